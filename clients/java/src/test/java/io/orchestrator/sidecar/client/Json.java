package io.orchestrator.sidecar.client;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;

/** proto3 JSON in and out of the scenarios. */
final class Json {
  private static final Gson GSON = new Gson();

  private Json() {}

  static JsonElement tree(Object yamlValue) {
    return GSON.toJsonTree(yamlValue);
  }

  static <B extends Message.Builder> B parse(Object yamlValue, B builder) throws InvalidProtocolBufferException {
    JsonFormat.parser().merge(GSON.toJson(yamlValue == null ? java.util.Map.of() : yamlValue), builder);
    return builder;
  }

  static JsonElement print(Message message) throws InvalidProtocolBufferException {
    return JsonParser.parseString(JsonFormat.printer().alwaysPrintFieldsWithNoPresence().print(message));
  }
}
