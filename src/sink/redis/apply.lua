--[[
apply.lua: applies one chunk of telem records to the live per-profile state in Redis, exactly
once, and advances the cursor in the same atomic step. The Redis sink (sink_redis.c) and the
rebuild from SQL (redis_rebuild.c) both call it, so live state and rebuilt state are computed by
the same code in the same order. It is embedded into the binary at build time (embed_lua.py),
loaded with SCRIPT LOAD and called with EVALSHA.

The script never fails half-way. Phase 1 finds the profiles and metric names of the chunk and
does every read (a key of the wrong type fails there); phase 2 applies the records in seq
order, computing totals in memory and adding stream entries; phase 3 writes the totals, the
latest metrics, the profile set and the cursor. Redis does not roll a script back, so doing
every read that can fail before the first write is what makes a failed call a call that did
nothing. The numbers it computes with arrive as binary doubles, so no record can fail to parse
once it got past phase 1.

KEYS[1]  the cursor key this call advances (a lane's cursor, or the base cursor in a rebuild)
KEYS[2]  the epoch key: a random token naming the current generation of the live state
KEYS[3]  the base cursor key: every lane has stored at least this far (written by a rebuild)
ARGV[1]  key prefix, e.g. "telem:"
ARGV[2]  the epoch the caller believes current (never empty)
ARGV[3]  the cursor the caller believes stored, or "" to skip that check
ARGV[4]  the new cursor (>= every seq below)
ARGV[5]  starting equity of a profile
ARGV[6]  MAXLEN ~ of each profile's trade stream; "0" keeps no stream
ARGV[7]  "1" to PUBLISH each trade on <prefix>events:<profile>
ARGV[8]  "a" to apply the records, "s" to skip them (lossy mode) and only move the cursor
ARGV[9]  milliseconds to extend the epoch key's TTL by (a rebuild's marker), "0" to leave it
ARGV[10..] one record per argument, packed by redis_apply.c (pack_record): a kind byte, then
         "s" fields (a length byte and that many bytes of text) and "d" fields (8-byte
         little-endian doubles, for the numbers the script computes with, so it never parses
         text):
         trade  'T' s:profile d:seq d:pnl d:fees d:closed_at s:seq s:script s:symbol s:side
                s:trade_id s:qty s:entry_price s:exit_price s:pnl s:fees s:opened_at s:closed_at
         metric 'M' s:profile s:name d:seq d:ts s:value
         Texts are "" when absent (absent pnl and fees count as 0); times are microseconds.

Reply {status, cursor, applied}:
  OK      the records with seq > stored cursor were applied; cursor is the new cursor
  DUP     the stored cursor is already >= the new cursor: a replay, nothing was done
  LOST    the epoch key is missing or names another generation: nothing was done
  BEHIND  the stored cursor is below the expected one (Redis lost acknowledged writes)
  BAD     a record of unknown kind; applied is its 1-based index; nothing was done
]]

local prefix = ARGV[1]

local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[2] then
    return {'LOST', epoch or '', '0'}
end

local function int(x)
    return string.format('%.0f', x)
end

-- Shortest text that reads back as exactly the same double.
local function fmt(x)
    local s = string.format('%.15g', x)
    if tonumber(s) ~= x then
        s = string.format('%.17g', x)
    end
    return s
end

local lane_cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local base_cur = lane_cur
if KEYS[3] ~= KEYS[1] then
    base_cur = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
end
local cur = math.max(lane_cur, base_cur)
local new_cursor = tonumber(ARGV[4])
if cur >= new_cursor then
    return {'DUP', int(cur), '0'}
end
if ARGV[3] ~= '' and cur < tonumber(ARGV[3]) then
    return {'BEHIND', int(cur), '0'}
end

local ttl_ms = tonumber(ARGV[9])
if ARGV[8] == 's' then
    redis.call('SET', KEYS[1], int(new_cursor))
    if ttl_ms > 0 then
        redis.call('PEXPIRE', KEYS[2], ttl_ms)
    end
    return {'OK', int(new_cursor), '0'}
end

local start_equity = tonumber(ARGV[5])
local maxlen = tonumber(ARGV[6])
local publish = ARGV[7] == '1'

local PROFILE_FMT = '<Bc0'
local METRIC_HEAD_FMT = '<Bc0Bc0'
local TRADE_FMT = '<Bc0ddddBc0Bc0Bc0Bc0Bc0Bc0Bc0Bc0Bc0Bc0Bc0Bc0'
local METRIC_FMT = '<Bc0Bc0ddBc0'
local TOTAL_FIELDS = {'trades', 'wins', 'losses', 'gross_pnl', 'fees', 'gross_win', 'gross_loss',
                      'peak_equity', 'max_drawdown', 'last_trade_at'}
local FIRST_RECORD = 10

-- Phase 1: find the profiles and metric names, and read their stored state. No writes.
local profiles = {} -- id -> {t = totals or nil, skey, mts = {}, mval = {}, mnames = {}}
local order = {}    -- profile ids in first-seen order, so writes happen in a stable order

local function profile(id)
    local p = profiles[id]
    if not p then
        p = {mts = {}, mval = {}, mnames = {}}
        profiles[id] = p
        order[#order + 1] = id
    end
    return p
end

for i = FIRST_RECORD, #ARGV do
    local a = ARGV[i]
    local kind = string.byte(a, 1)
    if kind == 84 then -- 'T'
        local id = struct.unpack(PROFILE_FMT, a, 2)
        local p = profile(id)
        if not p.t then
            local v = redis.call('HMGET', prefix .. 'profile:' .. id, unpack(TOTAL_FIELDS))
            local t = {}
            if v[1] then
                for k, f in ipairs(TOTAL_FIELDS) do
                    t[f] = tonumber(v[k]) or 0
                end
            else
                for _, f in ipairs(TOTAL_FIELDS) do
                    t[f] = 0
                end
                t.peak_equity = start_equity
            end
            p.t = t
            p.skey = prefix .. 'trades:' .. id
            if maxlen > 0 then
                redis.call('XLEN', p.skey) -- a key of the wrong type fails here, not later
            end
        end
    elseif kind == 77 then -- 'M'
        local id, name = struct.unpack(METRIC_HEAD_FMT, a, 2)
        local p = profile(id)
        if p.mts[name] == nil then
            local v = redis.call('HGET', prefix .. 'metrics:' .. id, name .. '@ts')
            p.mts[name] = v and tonumber(v) or -math.huge
        end
    else
        return {'BAD', int(cur), tostring(i - FIRST_RECORD + 1)}
    end
end
if #order > 0 then
    redis.call('SCARD', prefix .. 'profiles') -- a wrong type fails here, before any write
end

-- Phase 2: apply the records in seq order: totals in memory, streams and events written.
local function xadd_generic(skey, f)
    local names = {'seq', 'profile', 'script', 'symbol', 'side', 'trade_id', 'qty', 'entry_price',
                   'exit_price', 'pnl', 'fees', 'opened_at', 'closed_at'}
    local args = {}
    for k = 1, 13 do
        if f[k] ~= '' or k == 3 or k == 4 or k == 5 then
            args[#args + 1] = names[k]
            args[#args + 1] = f[k]
        end
    end
    redis.call('XADD', skey, 'MAXLEN', '~', maxlen, '*', unpack(args))
end

local function publish_trade(f)
    local names = {'seq', 'profile', 'script', 'symbol', 'side', 'trade_id', 'qty', 'entry_price',
                   'exit_price', 'pnl', 'fees', 'opened_at', 'closed_at'}
    local quoted = {false, true, true, true, true, true, false, false, false, false, false, false,
                    false}
    local parts = {}
    for k = 1, 13 do
        if f[k] ~= '' then
            local v = f[k]
            if quoted[k] then
                v = cjson.encode(v)
            end
            parts[#parts + 1] = '"' .. names[k] .. '":' .. v
        end
    end
    redis.call('PUBLISH', prefix .. 'events:' .. f[2], '{' .. table.concat(parts, ',') .. '}')
end

local applied = 0
for i = FIRST_RECORD, #ARGV do
    local a = ARGV[i]
    if string.byte(a, 1) == 84 then
        local id, seq, pnl, fees, closed_us, seq_s, script, symbol, side, trade_id, qty, entry,
              exit, pnl_s, fees_s, opened, closed = struct.unpack(TRADE_FMT, a, 2)
        if seq > cur then
            local p = profiles[id]
            local t = p.t
            t.trades = t.trades + 1
            if pnl > 0 then
                t.wins = t.wins + 1
                t.gross_win = t.gross_win + pnl
            elseif pnl < 0 then
                t.losses = t.losses + 1
                t.gross_loss = t.gross_loss - pnl
            end
            t.gross_pnl = t.gross_pnl + pnl
            t.fees = t.fees + fees
            local equity = start_equity + (t.gross_pnl - t.fees)
            if equity > t.peak_equity then
                t.peak_equity = equity
            end
            local drawdown = t.peak_equity - equity
            if drawdown > t.max_drawdown then
                t.max_drawdown = drawdown
            end
            if closed_us > t.last_trade_at then
                t.last_trade_at = closed_us
            end
            if maxlen > 0 then
                if qty ~= '' and entry ~= '' and exit ~= '' and pnl_s ~= '' and fees_s ~= '' and
                    opened ~= '' and trade_id == '' then
                    -- The usual trade, every field but trade_id: no argument table to build.
                    redis.call('XADD', p.skey, 'MAXLEN', '~', maxlen, '*', 'seq', seq_s,
                               'profile', id, 'script', script, 'symbol', symbol, 'side', side,
                               'qty', qty, 'entry_price', entry, 'exit_price', exit, 'pnl',
                               pnl_s, 'fees', fees_s, 'opened_at', opened, 'closed_at', closed)
                else
                    xadd_generic(p.skey, {seq_s, id, script, symbol, side, trade_id, qty, entry,
                                          exit, pnl_s, fees_s, opened, closed})
                end
            end
            if publish then
                publish_trade({seq_s, id, script, symbol, side, trade_id, qty, entry, exit, pnl_s,
                               fees_s, opened, closed})
            end
            applied = applied + 1
        end
    else
        local id, name, seq, ts, value = struct.unpack(METRIC_FMT, a, 2)
        if seq > cur then
            local p = profiles[id]
            if ts >= p.mts[name] then
                p.mts[name] = ts
                if p.mval[name] == nil then
                    p.mnames[#p.mnames + 1] = name
                end
                p.mval[name] = value
            end
            applied = applied + 1
        end
    end
end

-- Phase 3: write the totals, latest metrics, the profile set and the cursor. Commands with
-- many arguments are split to stay within Lua's stack.
local function call_chunked(cmd, key, list)
    local step = 1000
    for first = 1, #list, step do
        local last = math.min(first + step - 1, #list)
        redis.call(cmd, key, unpack(list, first, last))
    end
end

for _, id in ipairs(order) do
    local p = profiles[id]
    local t = p.t
    if t and t.trades > 0 then
        local net = t.gross_pnl - t.fees
        local equity = start_equity + net
        local pf = ''
        if t.gross_loss > 0 then
            pf = fmt(t.gross_win / t.gross_loss)
        end
        redis.call('HSET', prefix .. 'profile:' .. id,
                   'trades', int(t.trades), 'wins', int(t.wins), 'losses', int(t.losses),
                   'gross_pnl', fmt(t.gross_pnl), 'fees', fmt(t.fees), 'net_pnl', fmt(net),
                   'equity', fmt(equity), 'peak_equity', fmt(t.peak_equity),
                   'max_drawdown', fmt(t.max_drawdown), 'last_trade_at', int(t.last_trade_at),
                   'win_rate', fmt(t.wins / t.trades), 'profit_factor', pf,
                   'gross_win', fmt(t.gross_win), 'gross_loss', fmt(t.gross_loss))
    end
    if #p.mnames > 0 then
        local fields = {}
        for _, name in ipairs(p.mnames) do
            fields[#fields + 1] = name
            fields[#fields + 1] = p.mval[name]
            fields[#fields + 1] = name .. '@ts'
            fields[#fields + 1] = int(p.mts[name])
        end
        call_chunked('HSET', prefix .. 'metrics:' .. id, fields)
    end
end
if #order > 0 then
    call_chunked('SADD', prefix .. 'profiles', order)
end

redis.call('SET', KEYS[1], int(new_cursor))
if ttl_ms > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
return {'OK', int(new_cursor), tostring(applied)}
