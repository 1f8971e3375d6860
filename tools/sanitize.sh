#!/usr/bin/env bash
# Builds fastmlp with AddressSanitizer and UndefinedBehaviorSanitizer into a virtual environment
# of its own and runs the test suite under them. Exits non-zero when a test fails or when any
# AddressSanitizer report was written, in pytest's process or in the subprocesses tests start (a
# report in a subprocess whose failure a test expects would otherwise pass unseen; the reports go
# to files, printed at the end). UndefinedBehaviorSanitizer ends the process at its first finding
# (-fno-sanitize-recover, halt_on_error), which fails the test that ran it; GCC's UBSan runtime
# writes to stderr whatever log_path says, so its report is in that test's output.
#
#   tools/sanitize.sh                 # the whole suite
#   tools/sanitize.sh -x tests/test_sizes_and_allocation.py    # pytest arguments
#
# Everything lives under build/sanitize/ (the venv, the CMake build, the reports), so the usual
# build and .venv are left alone. GCC on Linux (the runtimes preloaded below are GCC's); PYTHON
# picks the interpreter, CXX the compiler whose runtimes are preloaded.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/build/sanitize
venv=$work/venv
reports=$work/reports
python=${PYTHON:-python3}
cxx=${CXX:-c++}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CMAKE_ARGS="-DCMAKE_CXX_FLAGS='$sanitizers' -DCMAKE_SHARED_LINKER_FLAGS='-fsanitize=address,undefined'" \
  FASTMLP_WERROR=ON "$venv/bin/python" -m pip install -q \
  --config-settings=build-dir="$work/{wheel_tag}" "$root[test]"

# The interpreter is not instrumented: the sanitizer runtimes must be loaded before anything else
# (and libstdc++ with them, so that ASan sees every operator new). Python's own allocations
# never get freed at exit, so leak checking stays off.
preload="$("$cxx" -print-file-name=libasan.so) $("$cxx" -print-file-name=libstdc++.so)"
rm -rf "$reports"
mkdir -p "$reports"
status=0
(
  cd "$root"
  LD_PRELOAD="$preload" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$reports/asan" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
) || status=$?

if compgen -G "$reports/*" > /dev/null; then
  echo "sanitizer reports:" >&2
  for report in "$reports"/*; do
    echo "== $report" >&2
    cat "$report" >&2
  done
  exit 1
fi
exit "$status"
