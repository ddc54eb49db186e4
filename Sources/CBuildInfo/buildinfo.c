#include "CBuildInfo.h"

#ifndef IOTGW_COMMIT
#define IOTGW_COMMIT "unknown"
#endif

const char *iotgw_build_commit(void) {
    return IOTGW_COMMIT;
}
