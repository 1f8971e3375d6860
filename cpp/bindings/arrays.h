// Checks that turn a NumPy argument into a raw pointer and sizes, or raise a ValueError/TypeError
// naming the argument. The Python layer already converts user input; these guard the border so a
// wrong call can never reach a kernel.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <limits>
#include <cstdint>
#include <string>

namespace fastmlp::bindings {

namespace py = pybind11;

inline std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A count from Python (anything with __index__) as a size_t: ValueError when negative; one
// beyond size_t becomes SIZE_MAX, which every caller clamps (a batch larger than the data) or
// refuses by size (a layer too large to allocate), as it would any other too large value.
inline std::size_t size_arg(const py::handle& value, const char* name) {
  const auto index = py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
  if (!index) throw py::error_already_set();
  if (index < py::int_(0))
    throw py::value_error(std::string(name) + " must be >= 0, got " + std::string(py::str(index)));
  const unsigned long long n = PyLong_AsUnsignedLongLong(index.ptr());
  if (n == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();  // an OverflowError: beyond 64 bits
    return std::numeric_limits<std::size_t>::max();
  }
  if constexpr (sizeof(std::size_t) < sizeof(unsigned long long)) {
    if (n > std::numeric_limits<std::size_t>::max()) return std::numeric_limits<std::size_t>::max();
  }
  return std::size_t(n);
}

template <class T>
struct Matrix {
  T* data;
  std::size_t rows, cols;
};

// A C-contiguous array of dtype T with `ndim` dimensions (and `cols` columns if cols != 0).
template <class T>
Matrix<T> contiguous(const py::array& a, const char* name, int ndim, std::size_t cols = 0) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + " must have dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_of(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  // The kernels load whole elements (and vectors) from it: a misaligned one is undefined behaviour.
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + " must be aligned to its element size");
  const std::size_t rows = std::size_t(a.shape(0));
  const std::size_t c = ndim == 2 ? std::size_t(a.shape(1)) : 1;
  if (cols != 0 && c != cols)
    throw py::value_error(std::string(name) + " must have " + std::to_string(cols) +
                          " columns, got shape " + shape_of(a));
  return {static_cast<T*>(const_cast<void*>(a.data())), rows, c};
}

}  // namespace fastmlp::bindings
