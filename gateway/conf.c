#include "conf.h"

const struct config *conf_live;
