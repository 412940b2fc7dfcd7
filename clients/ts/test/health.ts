/**
 * grpc.health.v1.Health/Check for the test runner's readiness wait. The client package does not ship
 * the health protos, so the two messages and the service are described here at run time.
 */
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

const HEALTH_FILE = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "HealthCheckRequest",
      field: [{ name: "service", jsonName: "service", number: 1, type: Type.STRING, label: Label.OPTIONAL }],
    },
    {
      name: "HealthCheckResponse",
      field: [
        {
          name: "status",
          jsonName: "status",
          number: 1,
          type: Type.ENUM,
          typeName: ".grpc.health.v1.HealthCheckResponse.ServingStatus",
          label: Label.OPTIONAL,
        },
      ],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: 0 },
            { name: "SERVING", number: 1 },
            { name: "NOT_SERVING", number: 2 },
            { name: "SERVICE_UNKNOWN", number: 3 },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: "Health",
      method: [{ name: "Check", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse" }],
    },
  ],
});

const HEALTH: DescService = (() => {
  const service = createFileRegistry(HEALTH_FILE, () => undefined).getService("grpc.health.v1.Health");
  if (service === undefined) throw new Error("grpc.health.v1.Health did not build");
  return service;
})();

const SERVING = 1;

/** True when Health/Check with the empty service name answers SERVING within `timeoutMs`. */
export async function isServing(address: string, timeoutMs: number): Promise<boolean> {
  const transport = createGrpcTransport({ baseUrl: `http://${address}` });
  const client = createClient(HEALTH, transport) as unknown as {
    check(request: { service: string }, options: { timeoutMs: number }): Promise<{ status: number }>;
  };
  try {
    return (await client.check({ service: "" }, { timeoutMs })).status === SERVING;
  } catch {
    return false;
  }
}
