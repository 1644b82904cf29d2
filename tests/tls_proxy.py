"""TLS in front of a plain-HTTP server on loopback, for clients that speak HTTPS only.

pgBackRest reaches S3 over HTTPS only, and moto's server speaks HTTP (its own ``--ssl`` mode
ends connections without a TLS close, which pgBackRest reports as an error). Run as
``python tests/tls_proxy.py LISTEN_PORT BACKEND_PORT CERT KEY``; prints ``ready`` once listening.
"""

from __future__ import annotations

import asyncio
import ssl
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def _serve(listen_port: int, backend_port: int, cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, ssl=context)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]))
