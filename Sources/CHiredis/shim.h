// The hiredis C client (Debian's libhiredis-dev, 0.14), imported by the Redis module only.
#ifndef TASK_STATUS_BRIDGE_CHIREDIS_SHIM_H
#define TASK_STATUS_BRIDGE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
