"""The websocket gateway: HELLO/heartbeats, IDENTIFY and RESUME, sessions, dispatch, sharding.

A :class:`Session` outlives its socket: every dispatch gets the session's next sequence
number and goes into the session's history first, then is written to the socket if one
is attached. That one rule gives resume (replay what the client hasn't seen), op 7
reconnect (detach, keep appending) and correct ordering under concurrent dispatches.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import threading

from aiohttp import WSMsgType, web

from . import payloads
from .models import shard_of
from .state import FakeState

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41250
HISTORY_LIMIT = 5000  # like Discord, a resume can only replay a bounded backlog
CHUNK_SIZE = 1000
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}
MEMBER_EVENTS = {"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"}


class Connection:
    """One websocket; a lock keeps frames from different tasks from interleaving."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.session: Session | None = None

    async def send(self, frame: dict | str) -> bool:
        """Write one frame as text JSON (never compressed: discord.py only inflates binary frames)."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        async with self.lock:
            return await self.send_unlocked(text)

    async def send_unlocked(self, text: str) -> bool:
        if self.ws.closed:
            return False
        try:
            await self.ws.send_str(text)
        except (ConnectionResetError, RuntimeError):
            return False
        return True

    async def close(self, code: int, message: str) -> None:
        await self.ws.close(code=code, message=message.encode())


class Session:
    """A gateway session: identity, intents, shard, sequence and replay history."""

    def __init__(self, *, shard: tuple[int, int] | None, intents: int, large_threshold: int) -> None:
        self.id = secrets.token_hex(16)
        self.shard = shard
        self.intents = intents
        self.large_threshold = large_threshold
        self.seq = 0
        self.sent = 0  # last sequence written to ``conn``
        self.history: collections.deque[tuple[int, str]] = collections.deque(maxlen=HISTORY_LIMIT)
        self.conn: Connection | None = None
        self.alive = True
        self.ready = False

    def covers(self, guild_id: int | None) -> bool:
        """Whether this session gets events for the guild (DMs go to shard 0)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return shard_id == 0 if guild_id is None else shard_of(guild_id, count) == shard_id

    def append(self, event: str, data: dict) -> None:
        """Give the event the next sequence number and keep it for delivery and replay."""
        self.seq += 1
        self.history.append((self.seq, json.dumps({"op": 0, "t": event, "s": self.seq, "d": data})))

    async def flush(self) -> None:
        """Write every kept event the attached socket hasn't had yet, in order."""
        conn = self.conn
        if conn is None:
            return
        async with conn.lock:
            if self.conn is not conn:
                return
            # Sequences in the history are consecutive, so the unsent ones are its tail.
            backlog = min(self.seq - self.sent, len(self.history))
            for seq, text in [self.history[-k] for k in range(backlog, 0, -1)]:
                if not await conn.send_unlocked(text):
                    return
                self.sent = seq


class Gateway:
    """Serves the websocket endpoint and routes dispatches to sessions."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.url = ""  # set by the server once its port is known
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.pending: list[tuple[int | None, str, dict]] = []  # events sent before a session covered them
        self.identified = threading.Event()
        self.ready_changed = threading.Condition()
        self.ready_count = 0
        self._background: set[asyncio.Task] = set()

    # --- the websocket ------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler for the gateway URL."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(ws)
        self.connections.add(conn)
        try:
            await conn.send(
                {"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["fake-gateway"]}}
            )
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await conn.close(4002, "Error while decoding payload.")
                    break
                await self._on_frame(conn, frame)
        finally:
            self.connections.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client that closes with 1000/1001 ends its session; any other close can resume.
                if ws.close_code in (1000, 1001):
                    session.alive = False
        return ws

    async def _on_frame(self, conn: Connection, frame: dict) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            await conn.send({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await conn.close(4003, "Not authenticated.")
        elif op == 8:
            await self._request_members(conn.session, data or {})
        elif op in (3, 4):
            pass  # presence and voice-state updates: accepted, nothing to model
        else:
            await conn.close(4001, "Unknown opcode.")

    async def _identify(self, conn: Connection, data: dict) -> None:
        state = self.state
        if conn.session is not None:
            return await conn.close(4005, "Already authenticated.")
        if data.get("token") != state.token:
            return await conn.close(4004, "Authentication failed.")
        intents = data.get("intents")
        if not isinstance(intents, int):
            return await conn.close(4013, "Invalid intent(s).")
        if not state.intent_allowed(intents):
            return await conn.close(4014, "Disallowed intent(s).")
        shard = data.get("shard")
        if shard is not None and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
            return await conn.close(4010, "Invalid shard.")
        with state.lock:
            state.identify_count += 1
        self.identified.set()
        session = Session(
            shard=tuple(shard) if shard else None, intents=intents, large_threshold=int(data.get("large_threshold", 50))
        )
        self.sessions[session.id] = session
        session.conn, conn.session = conn, session
        guilds = [g for g in state.guilds.values() if session.covers(g.id)]
        session.append("READY", self._ready_payload(session, guilds))
        for g in guilds:
            session.append(
                "GUILD_CREATE", payloads.guild_create(g, bot_id=state.bot_user.id, large_threshold=session.large_threshold)
            )
        session.ready = True
        self._take_pending(session)
        await session.flush()
        with self.ready_changed:
            self.ready_count += 1
            self.ready_changed.notify_all()

    def _ready_payload(self, session: Session, guilds: list) -> dict:
        state = self.state
        me = payloads.user(state.bot_user) | {"verified": True, "mfa_enabled": False, "flags": 0, "email": None}
        data = {
            "v": 10,
            "user": me,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": str(state.app_id), "flags": state.application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-gateway"],
        }
        if session.shard is not None:
            data["shard"] = list(session.shard)
        return data

    async def _resume(self, conn: Connection, data: dict) -> None:
        if data.get("token") != self.state.token:
            return await conn.close(4004, "Authentication failed.")
        session = self.sessions.get(data.get("session_id"))
        seq = data.get("seq") or 0
        if session is None or not session.alive or session.seq - seq > len(session.history) or seq > session.seq:
            # Not resumable: op 9 with d=false makes the client identify afresh.
            await conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        self.state.record("resumes", {"session_id": data.get("session_id"), "seq": data.get("seq")})
        old = session.conn
        session.conn, conn.session = conn, session
        session.sent = seq
        with self.state.lock:
            self.state.resume_count += 1
        if old is not None and old is not conn:
            # In the background: a half-open old socket would hold up the resume for the close timeout.
            task = asyncio.create_task(old.close(4000, "Session resumed elsewhere."))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        # Discord replays the missed events, then RESUMED.
        session.append("RESUMED", {"_trace": ["fake-gateway"]})
        await session.flush()

    async def _request_members(self, session: Session, data: dict) -> None:
        guild_ids = data.get("guild_id")
        for raw_id in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            g = self.state.guilds.get(int(raw_id))
            if g is None or not session.covers(g.id):
                continue
            user_ids = data.get("user_ids")
            not_found: list[str] = []
            if user_ids is not None:
                wanted = [int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])]
                ids = [u for u in wanted if u in g.members]
                not_found = [str(u) for u in wanted if u not in g.members]
            else:
                query, limit = (data.get("query") or "").lower(), data.get("limit") or 0
                ids = [u for u in g.members if g.users[u].name.lower().startswith(query)]
                if limit:  # 0 means "all" (only allowed with an empty query)
                    ids = ids[:limit]
            chunks = [ids[i : i + CHUNK_SIZE] for i in range(0, len(ids), CHUNK_SIZE)] or [[]]
            for index, chunk in enumerate(chunks):
                event = {
                    "guild_id": str(g.id),
                    "members": [payloads.member(g, uid) for uid in chunk],
                    "chunk_index": index,
                    "chunk_count": len(chunks),
                }
                if data.get("nonce") is not None:
                    event["nonce"] = data["nonce"]
                if not_found and index == len(chunks) - 1:
                    event["not_found"] = not_found
                if data.get("presences"):
                    event["presences"] = []
                session.append("GUILD_MEMBERS_CHUNK", event)
                await session.flush()  # flush per chunk so a 50k guild doesn't build one huge backlog

    # --- dispatching --------------------------------------------------------------------
    def _shape(self, session: Session, guild_id: int | None, event: str, data: dict) -> dict | None:
        """The event as this session sees it: intent-filtered, content blanked without 1<<15."""
        if event in MESSAGE_EVENTS:
            if not session.intents & (GUILD_MESSAGES if guild_id is not None else DIRECT_MESSAGES):
                return None
            bot_id = str(self.state.bot_user.id)
            author = (data.get("author") or {}).get("id")
            mentioned = any(m.get("id") == bot_id for m in data.get("mentions", ()))
            if (
                guild_id is not None
                and not session.intents & MESSAGE_CONTENT
                and author != bot_id
                and not mentioned
                and "content" in data
            ):
                # Like Discord: no message-content intent, no content (unless the bot is mentioned).
                data = data | {"content": "", "embeds": [], "attachments": [], "components": []}
        elif event in MEMBER_EVENTS and not session.intents & GUILD_MEMBERS:
            return None
        return data

    def _take_pending(self, session: Session) -> None:
        keep = []
        for guild_id, event, data in self.pending:
            if session.covers(guild_id):
                shaped = self._shape(session, guild_id, event, data)
                if shaped is not None:
                    session.append(event, shaped)
            else:
                keep.append((guild_id, event, data))
        self.pending = keep

    async def dispatch(self, guild_id: int | None, event: str, data: dict) -> int:
        """Send an event to every live session covering the guild; returns how many took it.

        With no such session yet (the bot hasn't identified), the event waits and goes
        out right after that session's GUILD_CREATEs.
        """
        targets = [s for s in self.sessions.values() if s.alive and s.ready and s.covers(guild_id)]
        if not targets:
            self.pending.append((guild_id, event, data))
            return 0
        for session in targets:
            shaped = self._shape(session, guild_id, event, data)
            if shaped is not None:
                session.append(event, shaped)
        for session in targets:
            await session.flush()
        return len(targets)

    async def request_reconnect(self, shard_id: int | None = None) -> int:
        """Send op 7 to attached sessions (all, or one shard); returns how many got it."""
        count = 0
        for session in list(self.sessions.values()):
            conn = session.conn
            if conn is None or not session.alive or (shard_id is not None and (session.shard or (0, 1))[0] != shard_id):
                continue
            # Detach first: whatever is dispatched from now on waits for the RESUME.
            session.conn = None
            await conn.send({"op": 7, "s": None, "t": None, "d": None})
            count += 1
        return count

    async def drop(self, shard_id: int | None = None) -> int:
        """Close attached sockets with 4000 (an error the client resumes after); events wait in history."""
        count = 0
        for session in list(self.sessions.values()):
            conn = session.conn
            if conn is None or not session.alive or (shard_id is not None and (session.shard or (0, 1))[0] != shard_id):
                continue
            session.conn = None
            await conn.close(4000, "Unknown error.")
            count += 1
        return count

    async def invalidate_sessions(self) -> None:
        """Send op 9 (not resumable) to every attached session and forget them."""
        for session in list(self.sessions.values()):
            conn, session.conn, session.alive = session.conn, None, False
            if conn is not None:
                await conn.send({"op": 9, "s": None, "t": None, "d": False})

    async def close_all(self, code: int = 1001) -> None:
        """Close every socket (server shutdown)."""
        for conn in list(self.connections):
            try:
                await asyncio.wait_for(conn.close(code, "Fake Discord is shutting down."), timeout=2)
            except (TimeoutError, ConnectionError):
                logger.debug("closing a gateway socket timed out")
