#include <string.h>

#include "http_status.h"

static const struct {
    const char *code;
    unsigned status;
} codes[] = {
    {"ok", 200},
    {"bad_json", 400},
    {"bad_request", 400},
    {"bad_topic", 400},
    {"unknown_op", 400},
    {"limit_exceeded", 400},
    {"auth_failed", 401},
    {"unauthenticated", 401},
    {"token_expired", 401},
    {"forbidden", 403},
    {"rate_limited", 429},
    {"broker_rejected", 502},
    {"broker_unavailable", 503},
};

static const struct {
    unsigned status;
    const char *text;
} texts[] = {
    {200, "OK"},
    {204, "No Content"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
};

unsigned http_status_of(const char *code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(codes[i].code, code) == 0)
            return codes[i].status;
    return 500;
}

const char *http_status_text(unsigned status)
{
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].status == status)
            return texts[i].text;
    return "Error";
}
