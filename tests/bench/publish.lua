-- wrk script: durable publishes through the server API over keep-alive
-- connections, spread over 64 channels (docs/storage.md).
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"channel":"bench:%d","type":"tick","data":{"n":%d}}', counter % 64, counter)
  return wrk.format("POST", "/api/publish",
    {["Authorization"] = "Bearer dev-api-key", ["Content-Type"] = "application/json"}, body)
end
