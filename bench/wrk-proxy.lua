-- wrk through a forward proxy: connect to the proxy (the URL given to wrk) and ask for TARGET in absolute form,
-- with the origin's authority in Host (as ../shared/bench-rig's script sends it; wrk's own would name the proxy).
-- CLOSE=1 adds "Connection: close", so every request opens a new connection.
local target = os.getenv("TARGET")
wrk.path = target
wrk.headers["Host"] = target:match("^%a+://([^/]+)")
if os.getenv("CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end
