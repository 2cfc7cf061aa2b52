-- wrk through a forward proxy: connect to the proxy (the URL given to wrk) and ask for TARGET in absolute form.
-- CLOSE=1 adds "Connection: close", so every request opens a new connection.
wrk.path = os.getenv("TARGET")
if os.getenv("CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end
