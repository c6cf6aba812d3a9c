/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef MQG_UTF8_H
#define MQG_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when buf[0..len) is well-formed UTF-8. */
bool utf8_valid(const void *buf, size_t len);

/* True when buf[0..len) is well-formed UTF-8 that an MQTT broker takes in
 * a string property (mosquitto drops the connection otherwise): no
 * U+0000..U+001F, U+007F..U+009F, U+FDD0..U+FDEF or U+nFFFE/U+nFFFF.
 * buf may be NULL when len is 0. */
bool utf8_mqtt_valid(const void *buf, size_t len);

#endif
