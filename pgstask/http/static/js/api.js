// The JSON API, from the page's own origin with its session cookie. Writes send the
// X-Pgstask-Request header, which the server requires of cookie-authenticated writes (a form on
// another site cannot send it). Paths are relative to the page (/stask/).

export class ApiError extends Error {
  constructor(status, body) {
    const title = body && body.error ? body.error : `HTTP ${status}`;
    const detail = body && body.message && body.message !== title ? `: ${body.message}` : "";
    super(`${title}${detail}`);
    this.status = status;
    this.body = body;
  }
}

async function request(path, init) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...init });
  } catch (err) {
    throw new ApiError(0, { error: "Network error", message: "the server did not answer" });
  }
  if (response.status === 401) {
    // The session ended (signed out elsewhere, or the token was removed).
    window.location.assign("login");
    throw new ApiError(401, { error: "Signed out", message: "sign in again" });
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok || (body && body.success === false)) throw new ApiError(response.status, body);
  return body;
}

export function get(path, params) {
  const query = params ? new URLSearchParams(clean(params)).toString() : "";
  return request(query ? `${path}?${query}` : path, { headers: { Accept: "application/json" } });
}

export function post(path, body) {
  return request(path, {
    method: "POST",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-Pgstask-Request": "1",
    },
    body: JSON.stringify(body === undefined ? {} : body),
  });
}

function clean(params) {
  return Object.fromEntries(
    Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""),
  );
}

export const taskPath = (id) => `task/${encodeURIComponent(id)}`;
export const workerPath = (identifier) => `worker/${encodeURIComponent(identifier)}`;
