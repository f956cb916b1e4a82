// The version of the built library, from the header it was built with.
#include "dfss.h"

extern "C" {

DFSS_API int32_t dfss_version(void) {
  return DFSS_VERSION_MAJOR * 10000 + DFSS_VERSION_MINOR * 100 + DFSS_VERSION_PATCH;
}

DFSS_API int32_t dfss_abi_version(void) { return DFSS_ABI_VERSION; }

}  // extern "C"
