#ifndef IOTGW_CCBOR_SHIM_H
#define IOTGW_CCBOR_SHIM_H
/* libcbor 0.8 (Debian 12): only its streaming decoder is used, so a header
 * that claims a huge array or string allocates nothing (see CBORCodec). */
#include <cbor.h>
#endif
