-- The request path of the subscribe host (providers' change webhooks): the URL the
-- provider called goes to the api in x-ampmesh-original-uri, because HubSpot signs it
-- (method + URL + body + timestamp) and the transcoder, after this filter, rewrites :path
-- to the gRPC method's, which would leave the api nothing to verify the signature over.
--
-- scheme://authority/path?query, exactly as the provider sent them: the scheme is
-- x-forwarded-proto's (the connection manager sets it for this listener's own
-- connections; a deployment behind a TLS proxy trusts that proxy's), else that of the
-- listener's connection; the authority is the Host the provider called; path and query
-- are the raw :path (not decoded, not normalized: the signature is over the bytes).
--
-- A client's own x-ampmesh-original-uri is always replaced, so no caller can choose the
-- URL a signature is checked against.

local HEADER = "x-ampmesh-original-uri"

function envoy_on_request(handle)
  local headers = handle:headers()
  local scheme = headers:get("x-forwarded-proto")
  if scheme == nil or scheme == "" then
    scheme = handle:connection():ssl() and "https" or "http"
  end
  local uri = scheme .. "://" .. (headers:get(":authority") or "") .. (headers:get(":path") or "")
  headers:replace(HEADER, uri)
end
