/*
 * The Linux socket options transparent proxying needs and Node does not expose:
 *   setTransparent(fd)        IP_TRANSPARENT (and IPV6_TRANSPARENT on IPv6 sockets) on a listening socket, so
 *                             TPROXY may hand it connections addressed to other hosts;
 *   originalDestination(fd)   SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST on an accepted socket: where a connection
 *                             rewritten by REDIRECT or DNAT was going, from conntrack.
 * Written against N-API (node_api.h) so one build serves every Node release. Errors are thrown as Error objects
 * whose `code` is the errno name, so the caller can tell "not permitted" from "not redirected".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netfilter_ipv4.h>
#include <node_api.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
/* From linux/netfilter_ipv6/ip6_tables.h, which does not compile on its own in user space. */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* strerrorname_np is glibc-only; musl (Alpine) builds too with this short list of what these calls return. */
static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTCONN: return "ENOTCONN";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error;
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

static int fd_argument(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, NULL, "expected a file descriptor");
    return 0;
  }
  return 1;
}

static int socket_family(int fd) {
  struct sockaddr_storage local;
  socklen_t length = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &length) != 0) return -1;
  return local.ss_family;
}

static napi_value set_transparent(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  int family = socket_family(fd);
  if (family < 0) return throw_errno(env, "getsockname", errno);
  int on = 1;
  if (family == AF_INET6) {
    if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof on) != 0) return throw_errno(env, "setsockopt(IPV6_TRANSPARENT)", errno);
    /* A dual-stack socket also takes IPv4 connections; the IPv4 flag may be refused there, which only matters for those. */
    (void)setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on);
  } else if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on) != 0) {
    return throw_errno(env, "setsockopt(IP_TRANSPARENT)", errno);
  }
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

static napi_value address_object(napi_env env, const struct sockaddr_storage *address) {
  char text[INET6_ADDRSTRLEN];
  unsigned port;
  if (address->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    port = ntohs(v6->sin6_port);
  } else {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    port = ntohs(v4->sin_port);
  }
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "address", value);
  napi_create_uint32(env, port, &value);
  napi_set_named_property(env, result, "port", value);
  napi_create_string_utf8(env, address->ss_family == AF_INET6 ? "IPv6" : "IPv4", NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "family", value);
  return result;
}

static napi_value original_destination(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  int family = socket_family(fd);
  if (family < 0) return throw_errno(env, "getsockname", errno);
  struct sockaddr_storage destination;
  memset(&destination, 0, sizeof destination);
  socklen_t length = sizeof destination;
  if (family == AF_INET6) {
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &destination, &length) == 0) return address_object(env, &destination);
    /* An IPv4 connection on a dual-stack socket was tracked as IPv4. */
    int err = errno;
    length = sizeof destination;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &destination, &length) == 0) return address_object(env, &destination);
    return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", err);
  }
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &destination, &length) != 0) return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
  return address_object(env, &destination);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    {"setTransparent", NULL, set_transparent, NULL, NULL, NULL, napi_enumerable, NULL},
    {"originalDestination", NULL, original_destination, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
