// One unary call, one stream, one typed error. Run a sidecar (`make run`), then `npm start`.
import { NotFoundError, SidecarClient, messageText, userMessage } from "@orchestrator/sidecar-client";

const client = new SidecarClient(); // $ORCHESTRATOR_SIDECAR_ADDRESS or 127.0.0.1:50051, $ORCHESTRATOR_SIDECAR_TOKEN

const answer = await client.generate({ tenantId: "acme", userId: "u1", messages: [userMessage("hello")] }, { timeoutMs: 10_000 });
console.log(`${messageText(answer.message)} ${answer.summary?.usage?.totalTokens ?? 0}`); // int64 fields are bigint

for await (const event of client.stream({ tenantId: "acme", userId: "u1", messages: [userMessage("hello, streaming")] })) {
  if (event.event.case === "delta" && event.event.value.kind.case === "text") process.stdout.write(event.event.value.kind.value);
}
console.log();

try {
  await client.generate({ model: "no-such-route", tenantId: "acme", userId: "u1", messages: [userMessage("hi")] });
} catch (err) {
  if (!(err instanceof NotFoundError)) throw err;
  console.log(`${err.reason}: model=${err.metadata["model"]}`);
}
client.close();
