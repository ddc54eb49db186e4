#ifndef IOTGW_CMOSQUITTO_SHIM_H
#define IOTGW_CMOSQUITTO_SHIM_H
/* libmosquitto 2.0 (Debian 12). Its API imports directly; nothing to wrap.
 * mqtt_protocol.h names the MQTT 5 properties and reason codes. */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
