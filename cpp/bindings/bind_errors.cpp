// fastmlp._core.AllocationError (a MemoryError) and fastmlp._core.SizeError (a ValueError): the
// core's refusals of a size, with the layer they concern (an index, or None) and the bytes asked
// for (or None when the size does not even fit in 64 bits) as attributes.
#include <pybind11/gil_safe_call_once.h>
#include <pybind11/pybind11.h>

#include <exception>

#include "fastmlp/sizes.h"

namespace fastmlp::bindings {

namespace py = pybind11;

namespace {

struct ErrorTypes {
  py::object allocation, size;
};

py::object layer_or_none(long layer) { return layer < 0 ? py::object(py::none()) : py::object(py::int_(layer)); }
py::object bytes_or_none(std::size_t bytes) { return bytes == 0 ? py::object(py::none()) : py::object(py::int_(bytes)); }

void raise(const py::object& type, const char* message, long layer, std::size_t bytes) {
  py::object error = type(message);
  error.attr("layer") = layer_or_none(layer);
  error.attr("bytes") = bytes_or_none(bytes);
  PyErr_SetObject(type.ptr(), error.ptr());
}

}  // namespace

void bind_errors(py::module_& m) {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<ErrorTypes> storage;
  storage.call_once_and_store_result([&] {
    ErrorTypes types;
    types.allocation = py::reinterpret_steal<py::object>(
        PyErr_NewExceptionWithDoc("fastmlp._core.AllocationError",
                                  "A buffer of the core could not be allocated (attributes: layer, bytes).",
                                  PyExc_MemoryError, nullptr));
    types.size = py::reinterpret_steal<py::object>(
        PyErr_NewExceptionWithDoc("fastmlp._core.SizeError",
                                  "A size too large for the core to allocate (attributes: layer, bytes).",
                                  PyExc_ValueError, nullptr));
    if (!types.allocation || !types.size) throw py::error_already_set();
    return types;
  });
  const ErrorTypes& types = storage.get_stored();
  m.attr("AllocationError") = types.allocation;
  m.attr("SizeError") = types.size;
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const AllocationError& e) {
      raise(storage.get_stored().allocation, e.what(), e.layer(), e.bytes());
    } catch (const SizeError& e) {
      raise(storage.get_stored().size, e.what(), e.layer(), e.bytes());
    }
  });
}

}  // namespace fastmlp::bindings
