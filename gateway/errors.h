/* The daemon's one error vocabulary (as libuv has one): a function that can
 * fail returns 0 or one of these negative codes, and its header says which
 * it may return. Where a function returns -1, that is MQG_EFAIL: it failed
 * and has logged why. */
#ifndef MQG_ERRORS_H
#define MQG_ERRORS_H

enum mqg_err {
    MQG_OK = 0,
    MQG_EFAIL = -1,        /* failed, and logged why */
    MQG_ENOMEM = -2,       /* out of memory */
    MQG_ENOTCONN = -3,     /* the broker connection is not up */
    MQG_EFULL = -4,        /* a bounded buffer is full */
    MQG_EREFUSED = -5,     /* the broker refused it (MQTT 5 reason >= 0x80) */
    MQG_ELOST = -6,        /* lost with the broker connection */
};

/* A short text for code, for logs and error messages. */
static inline const char *mqg_strerror(int code)
{
    switch (code) {
    case MQG_OK: return "ok";
    case MQG_ENOMEM: return "out of memory";
    case MQG_ENOTCONN: return "the broker is not connected";
    case MQG_EFULL: return "the buffer is full";
    case MQG_EREFUSED: return "the broker refused it";
    case MQG_ELOST: return "the broker connection was lost";
    default: return "failed";
    }
}

#endif
