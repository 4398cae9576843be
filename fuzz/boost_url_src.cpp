// Boost.URL compiled from its headers, once, so its code is instrumented
// like the project's (the Debian shared library is not).
#include <boost/url/src.hpp>
