"""One unary call, one stream and one typed error against the sidecar (asyncio client).

Run: ORCHESTRATOR_SIDECAR_ADDRESS=127.0.0.1:50051 ORCHESTRATOR_SIDECAR_TOKEN=... python quickstart.py
"""
# ruff: noqa: T201  (an example prints its results)

import asyncio

import orchestrator_client as oc


async def main() -> None:
    async with oc.AsyncClient() as client:  # address and token from the environment
        ask = oc.generation_input("Say hello", tenant_id="acme", user_id="u1")
        answer = await client.generate(ask, timeout=10)
        print(oc.text_of(answer), answer.summary.usage.total_tokens)

        async for event in client.stream(ask, timeout=30):
            if event.HasField("delta"):
                print(event.delta.text, end="", flush=True)
        print()

        try:
            wrong = oc.generation_input("hi", model="no-such-model", tenant_id="acme")
            await client.generate(wrong, timeout=10)
        except oc.NotFoundError as err:
            print("typed error:", err.reason, dict(err.metadata))


asyncio.run(main())
