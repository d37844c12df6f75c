// Starts Swagger UI on the gateway's own document. Kept out of the HTML so the page
// runs under a Content-Security-Policy without 'unsafe-inline' scripts.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    validatorUrl: null, // never call an outside validator: the page works offline
    tryItOutEnabled: true,
    displayRequestDuration: true,
    persistAuthorization: false,
  });
})();
