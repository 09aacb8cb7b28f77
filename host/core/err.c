/*
** err.c: names, kinds and messages of the codes in err.h's one map.
**
** Plain switches over ARB_ERRNO_MAP: no tables to keep in step, no state.
*/
#include "err.h"

#include <stddef.h>

int arb_err_is_ours(int code) {
  switch (code) {
#define XX(name, val, kind, msg) case val:
    ARB_ERRNO_MAP(XX)
#undef XX
    return 1;
  }
  return 0;
}

const char *arb_strerror(int code) {
  switch (code) {
#define XX(name, val, kind, msg) \
  case val:                      \
    return msg;
    ARB_ERRNO_MAP(XX)
#undef XX
  }
  return code == 0 ? "success" : "unknown error";
}

const char *arb_err_name(int code) {
  switch (code) {
#define XX(name, val, kind, msg) \
  case val:                      \
    return #name;
    ARB_ERRNO_MAP(XX)
#undef XX
  }
  return code == 0 ? "OK" : "EUNKNOWN";
}

const char *arb_strkind(int code) {
  switch (code) {
#define XX(name, val, kind, msg) \
  case val:                      \
    return kind;
    ARB_ERRNO_MAP(XX)
#undef XX
  }
  return NULL;
}
