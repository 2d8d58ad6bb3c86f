// The API's /docs page: Swagger UI from our own static files (no CDN), the schema from /openapi.json; both
// need a login. "Try it out" sends the session cookie, and the session's CSRF token with every change.
const root = document.getElementById("swagger-ui");
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  docExpansion: "none", // the tags start folded: a large API drawn whole stopped drawing after its first tag
  validatorUrl: null, // never the public validator: call centers run on closed networks
  requestInterceptor: (request) => {
    if (csrf && !["GET", "HEAD", "OPTIONS"].includes((request.method || "GET").toUpperCase())) {
      request.headers["X-CSRF-Token"] = csrf;
    }
    return request;
  },
});
