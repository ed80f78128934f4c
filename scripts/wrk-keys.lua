-- wrk script for scripts/wrk-load.sh: GET /v1/quote/KEY over a key space,
-- counting answers by status, 5xx answers by their error code, and 2xx
-- answers by X-Cache.
--
--   wrk -t2 -c64 -d60s -s scripts/wrk-keys.lua http://127.0.0.1:PORT -- random 5000
--   wrk -t2 ... -- sweep 5000 2   # each of the 2 threads walks its share of the keys (warm-up)
--
-- Keys are K0000 .. K(N-1), zero-padded to 4 digits. `random` picks one at
-- random for each request; `sweep` visits every key, thread t taking keys
-- t, t + T, t + 2T, ... (T threads, the third argument: wrk's -t) and
-- starting over at the end.
-- done() prints lines for the calling script to parse:
--   RESULT requests=N duration_s=S rps=R p50_ms=A p99_ms=B socket_errors=E
--   STATUS <status> <count>
--   CODE <status> <error code> <count>       (5xx answers only)
--   CACHE <X-Cache value> <count>            (2xx answers only)

local threads = {}
local thread_count = 0

function setup(thread)
    thread:set("id", thread_count)
    thread_count = thread_count + 1
    table.insert(threads, thread)
end

local mode = "random"
local key_count = 5000
local next_index = 0
local step = 1

function init(args)
    mode = args[1] or "random"
    key_count = tonumber(args[2] or "5000")
    next_index = id
    step = tonumber(args[3] or "1")
    math.randomseed(os.time() * 1000 + id)
    statuses = {}
    codes = {}
    caches = {}
end

local function key_path(n)
    return string.format("/v1/quote/K%04d", n)
end

function request()
    local n
    if mode == "sweep" then
        n = next_index % key_count
        next_index = next_index + step
    else
        n = math.random(0, key_count - 1)
    end
    return wrk.format("GET", key_path(n))
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status >= 500 then
        local code = body and string.match(body, '"code"%s*:%s*"([^"]+)"') or "none"
        local name = status .. " " .. code
        codes[name] = (codes[name] or 0) + 1
    elseif status >= 200 and status < 300 then
        local cache = headers["x-cache"] or headers["X-Cache"] or "none"
        caches[cache] = (caches[cache] or 0) + 1
    end
end

local function add_into(total, part)
    for k, v in pairs(part or {}) do
        total[k] = (total[k] or 0) + v
    end
end

function done(summary, latency, requests)
    local all_statuses, all_codes, all_caches = {}, {}, {}
    for _, thread in ipairs(threads) do
        add_into(all_statuses, thread:get("statuses"))
        add_into(all_codes, thread:get("codes"))
        add_into(all_caches, thread:get("caches"))
    end
    local duration_s = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_s=%.1f rps=%.0f p50_ms=%.2f p99_ms=%.2f socket_errors=%d\n",
        summary.requests, duration_s, summary.requests / duration_s,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        e.connect + e.read + e.write + e.timeout))
    for k, v in pairs(all_statuses) do
        io.write(string.format("STATUS %s %d\n", k, v))
    end
    for k, v in pairs(all_codes) do
        io.write(string.format("CODE %s %d\n", k, v))
    end
    for k, v in pairs(all_caches) do
        io.write(string.format("CACHE %s %d\n", k, v))
    end
end
