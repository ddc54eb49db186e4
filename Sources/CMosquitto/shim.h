#ifndef IOTGW_CMOSQUITTO_SHIM_H
#define IOTGW_CMOSQUITTO_SHIM_H
/* libmosquitto 2.0 (Debian 12). Its API imports directly; nothing to wrap. */
#include <mosquitto.h>
#endif
