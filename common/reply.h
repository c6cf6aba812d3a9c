/* The gateway's reply frames (protocol.md § Requests, Authentication,
 * allow), built into a jbuf with exact lengths whatever the user name, the
 * role names or the echoed id hold. I/O-free. */
#ifndef MQG_REPLY_H
#define MQG_REPLY_H

#include <stddef.h>

#include "config.h"
#include "jbuf.h"

/* Bytes of an error's human message at most; longer ones are cut at a
 * UTF-8 character boundary. */
#define REPLY_MESSAGE_MAX 255

/* Appends {"op":OP and, when id_len, ,"id":ID (id is already JSON). */
void reply_begin(struct jbuf *b, const char *op, const char *id,
                 size_t id_len);

/* Appends the closing brace. */
void reply_end(struct jbuf *b);

/* A whole error frame: {"op":"error"[,"id":ID],"code":C,"message":M}. msg
 * is any bytes: it is cut to valid UTF-8 of at most REPLY_MESSAGE_MAX. */
void reply_error(struct jbuf *b, const char *id, size_t id_len,
                 const char *code, const char *msg, size_t msg_len);

/* Appends ,"user":U,"roles":[NAMES] for user (valid UTF-8) and the roles'
 * names. */
void reply_identity(struct jbuf *b, const char *user,
                    const struct cfg_role *const *roles, size_t n);

/* Appends ,"allow":{"subscribe":[...],"publish":[...]}: the roles'
 * patterns as they apply to user (acl_each_pattern()). */
void reply_allow(struct jbuf *b, const struct cfg_role *const *roles,
                 size_t n, const char *user);

#endif
