/*
 * web/static.c — the browser files under static_dir: "/" (the dashboard), "/view", "/embed.js"
 * and the rest by path. Each answer carries an ETag and Last-Modified (a matching If-None-Match
 * gets 304), Cache-Control: no-cache so an upgrade shows at once, and, for pages, a
 * Content-Security-Policy that allows only what they load from this origin. /embed.js is meant
 * for pages of other origins, so it carries CORS headers. Service thread.
 */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "log.h"
#include "web.h"

/* The pages' own scripts, styles and connections only; nothing inline, no framing elsewhere. */
#define CSP_PAGE                                                                                   \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                \
	"form-action 'self'; frame-ancestors 'self'"
/* /view is made to be framed by any page. */
#define CSP_VIEW                                                                                   \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                \
	"form-action 'self'; frame-ancestors *"

/* Room for an answer's header block. */
#define HEADERS_MAX 2048

static const struct {
	const char *ext;
	const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".webp", "image/webp"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".md", "text/plain; charset=utf-8"},
    {"LICENSE", "text/plain; charset=utf-8"},
    {"VERSION", "text/plain; charset=utf-8"},
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static const char *type_of(const char *path)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (ends_with(path, types[i].ext))
			return types[i].type;
	}
	return "application/octet-stream";
}

/* The file a URL path names, relative to static_dir; NULL when it names none we serve. */
static const char *file_of(const char *path)
{
	/* lws hands over the path after the mount point "/", with or without its slash. */
	if (*path == '/')
		path++;
	if (!*path)
		return "index.html";
	/* Not "view/": the page's relative URLs would then resolve under /view/. */
	if (!strcmp(path, "view"))
		return "view.html";
	/* lws collapses "//", "/./" and "/../" already; hidden files are not for the web. */
	if (*path == '.' || strstr(path, "/.") || path[strlen(path) - 1] == '/')
		return NULL;
	return path;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
		      unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)value, (int)strlen(value), p,
					   end);
}

/* Headers every answer about a file carries: validators, caching, and the file's policies. */
static int file_headers(struct lws *wsi, struct web_ctx *ctx, const char *rel,
			const struct stat *st, const char *etag, unsigned char **p,
			unsigned char *end)
{
	char date[64], origin[256];
	struct tm tm;
	int n;

	gmtime_r(&st->st_mtime, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (add_header(wsi, "etag:", etag, p, end) ||
	    add_header(wsi, "last-modified:", date, p, end) ||
	    add_header(wsi, "cache-control:", "no-cache", p, end) ||
	    add_header(wsi, "x-content-type-options:", "nosniff", p, end) ||
	    add_header(wsi, "referrer-policy:", "same-origin", p, end))
		return -1;
	if (ends_with(rel, ".html") &&
	    add_header(wsi, "content-security-policy:",
		       !strcmp(rel, "view.html") ? CSP_VIEW : CSP_PAGE, p, end))
		return -1;
	if (strcmp(rel, "embed.js"))
		return 0;
	/* Pages of other origins load the element: a module script load is a CORS request. */
	n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (n > 0 && guard_origin_allowed(ctx->cfg, origin) &&
	    (add_header(wsi, "access-control-allow-origin:", origin, p, end) ||
	     add_header(wsi, "vary:", "Origin", p, end)))
		return -1;
	return add_header(wsi, "cross-origin-resource-policy:", "cross-origin", p, end);
}

/* An answer without a body (304, 404, 405), written at once. */
static int answer_empty(struct lws *wsi, unsigned int status, const unsigned char *extra,
			size_t extra_len)
{
	uint8_t buf[LWS_PRE + HEADERS_MAX], *start = buf + LWS_PRE, *p = start,
					    *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, status, "text/plain", 0, &p, end) ||
	    (size_t)(end - p) < extra_len)
		return -1;
	memcpy(p, extra, extra_len);
	p += extra_len;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int serve(struct lws *wsi, struct web_ctx *ctx, const char *path)
{
	uint8_t hdrs[HEADERS_MAX], *p = hdrs, *end = hdrs + sizeof(hdrs);
	char full[PATH_MAX], real[PATH_MAX], etag[80], none_match[160];
	const char *rel = file_of(path);
	size_t root_len;
	struct stat st;
	char *method_uri;
	int len, m;

	m = lws_http_get_uri_and_method(wsi, &method_uri, &len);
	if (m < 0)
		return -1;
	if (m != LWSHUMETH_GET && m != LWSHUMETH_HEAD) {
		p = hdrs;
		if (add_header(wsi, "allow:", "GET, HEAD", &p, end))
			return -1;
		return answer_empty(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, hdrs, (size_t)(p - hdrs));
	}
	root_len = strlen(ctx->static_root);
	if (!rel ||
	    snprintf(full, sizeof(full), "%s/%s", ctx->static_root, rel) >= (int)sizeof(full) ||
	    !realpath(full, real) || strncmp(real, ctx->static_root, root_len) ||
	    real[root_len] != '/' || stat(real, &st) || !S_ISREG(st.st_mode))
		goto not_found;
	/* Size and modification time name the version, so any change of the file shows. */
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"", (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	if (file_headers(wsi, ctx, rel, &st, etag, &p, end))
		return -1;
	if (lws_hdr_copy(wsi, none_match, sizeof(none_match), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
	    strstr(none_match, etag))
		return answer_empty(wsi, HTTP_STATUS_NOT_MODIFIED, hdrs, (size_t)(p - hdrs));
	m = lws_serve_http_file(wsi, real, type_of(rel), (const char *)hdrs, (int)(p - hdrs));
	if (m < 0)
		return -1;
	if (m > 0 && lws_http_transaction_completed(wsi))
		return -1;
	return 0;
not_found:
	if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback_static(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	if (reason == LWS_CALLBACK_HTTP)
		return serve(wsi, web_ctx_of(wsi), in ? (const char *)in : "/");
	/* The file transfer itself and its completion: lws's default handling. */
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols web_static_protocol(void)
{
	struct lws_protocols p;

	memset(&p, 0, sizeof(p));
	p.name = "mwb-static";
	p.callback = callback_static;
	return p;
}
