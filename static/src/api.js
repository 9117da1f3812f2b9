// Same-origin JSON requests to the app, with the CSRF header on every state-changing call.

/** The page's CSRF token, from <meta name="csrf-token">. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

/** A human sentence for a failed response: the JSON `detail` when the app sent one. */
export function errorDetail(status, data) {
  if (data && typeof data.detail === "string" && data.detail) return data.detail;
  if (data && Array.isArray(data.detail) && data.detail.length) {
    // FastAPI's validation errors: a list of {loc, msg}.
    return data.detail.map((item) => item.msg || String(item)).join("; ");
  }
  if (status === 0) return "Could not reach the server. Check your connection and try again.";
  if (status === 401) return "Sign in to continue.";
  if (status === 403) return "You are not allowed to do that.";
  if (status === 413) return "Your code is too large to send.";
  if (status === 429) return "Too many requests: wait a moment and try again.";
  if (status === 503) return "The server is busy: try again in a moment.";
  return `The server answered ${status}.`;
}

/**
 * Sends a request and reads its JSON answer.
 * Resolves to {ok, status, data, detail}; never rejects (a network failure is status 0).
 */
export async function request(url, { method = "GET", json, keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      credentials: "same-origin",
      keepalive,
    });
  } catch (error) {
    return { ok: false, status: 0, data: null, detail: errorDetail(0, null) };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // an empty or non-JSON body (202, a proxy's HTML error page)
  }
  return {
    ok: response.ok,
    status: response.status,
    data,
    detail: response.ok ? "" : errorDetail(response.status, data),
  };
}
