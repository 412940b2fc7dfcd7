package io.orchestrator.sidecar.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The contract scenario format (tests/contract/scenarios.yaml, see CONTRACT.md) and its matchers. */
final class Scenarios {
  private Scenarios() {}

  /** What a scenario's call produced. */
  record Outcome(SidecarException error, JsonElement response, String text, List<String> events, int deltas, boolean cancelledByClient) {}

  /** Every way the outcome differs from the expectation; empty when it matches. */
  static List<String> mismatches(Map<String, Object> expect, Outcome outcome) {
    boolean wantsError = expect.containsKey("code") || expect.containsKey("reason") || Boolean.TRUE.equals(expect.get("cancelled"));
    if (!wantsError) {
      return outcome.error() == null ? successMismatches(expect, outcome) : List.of("expected success, got " + outcome.error());
    }
    if (outcome.error() == null) {
      return List.of("expected an error " + expect.get("code") + "/" + expect.get("reason") + ", got success");
    }
    return errorMismatches(expect, outcome.error(), outcome);
  }

  @SuppressWarnings("unchecked")
  private static List<String> successMismatches(Map<String, Object> expect, Outcome outcome) {
    List<String> problems = new ArrayList<>();
    if (expect.containsKey("text") && !String.valueOf(expect.get("text")).equals(outcome.text())) {
      problems.add("text: want \"" + expect.get("text") + "\", got \"" + outcome.text() + "\"");
    }
    if (expect.containsKey("events") && !eventsMatch((List<String>) expect.get("events"), outcome.events())) {
      problems.add("events: want " + expect.get("events") + ", got " + outcome.events());
    }
    if (expect.containsKey("response")) {
      problems.addAll(subsetMismatches(Json.tree(expect.get("response")), outcome.response(), "response"));
    }
    return problems;
  }

  @SuppressWarnings("unchecked")
  private static List<String> errorMismatches(Map<String, Object> expect, SidecarException err, Outcome outcome) {
    List<String> problems = new ArrayList<>();
    String got = " (got " + err.getMessage() + ", metadata " + err.metadata() + ")";
    if (expect.containsKey("code") && !err.code().name().equals(expect.get("code"))) {
      problems.add("code: want " + expect.get("code") + got);
    }
    if (expect.containsKey("reason") && !err.reason().equals(expect.get("reason"))) {
      problems.add("reason: want " + expect.get("reason") + got);
    }
    for (String key : (List<String>) expect.getOrDefault("metadata_keys", List.of())) {
      if (!err.metadata().containsKey(key)) {
        problems.add("metadata key " + key + " missing" + got);
      }
    }
    List<String> fields = err.fieldViolations().stream().map(SidecarException.FieldViolation::field).toList();
    for (String field : (List<String>) expect.getOrDefault("field_violations", List.of())) {
      if (!fields.contains(field)) {
        problems.add("field violation " + field + " missing from " + fields);
      }
    }
    if (expect.containsKey("retry_info") && err.retryDelay().isPresent() != (Boolean) expect.get("retry_info")) {
      problems.add("retry_info: want " + expect.get("retry_info") + got);
    }
    if (expect.containsKey("quota_failure") && !err.quotaViolations().isEmpty() != (Boolean) expect.get("quota_failure")) {
      problems.add("quota_failure: want " + expect.get("quota_failure") + got);
    }
    if (Boolean.TRUE.equals(expect.get("quota_failure")) && !(err instanceof QuotaExceededException)) {
      problems.add("the caller's quota is not a QuotaExceededException" + got);
    }
    if (expect.containsKey("deltas_before_error") && outcome.deltas() < ((Number) expect.get("deltas_before_error")).intValue()) {
      problems.add("deltas before error: want >= " + expect.get("deltas_before_error") + ", got " + outcome.deltas());
    }
    if (expect.containsKey("partial_usage")) {
      boolean has = err instanceof StreamInterruptedException s && s.partialUsage().isPresent();
      if (has != (Boolean) expect.get("partial_usage")) {
        problems.add("partial_usage: want " + expect.get("partial_usage") + got);
      }
    }
    if (expect.containsKey("cancelled")) {
      boolean cancelled = outcome.cancelledByClient() && err instanceof CancelledException;
      if (cancelled != (Boolean) expect.get("cancelled")) {
        problems.add("cancelled: want " + expect.get("cancelled") + got);
      }
    }
    return problems;
  }

  /** {@code delta+} matches one or more consecutive deltas; every other kind matches itself once. */
  static boolean eventsMatch(List<String> pattern, List<String> actual) {
    int i = 0;
    for (String want : pattern) {
      if (want.endsWith("+")) {
        String kind = want.substring(0, want.length() - 1);
        if (i >= actual.size() || !actual.get(i).equals(kind)) {
          return false;
        }
        while (i < actual.size() && actual.get(i).equals(kind)) {
          i++;
        }
      } else {
        if (i >= actual.size() || !actual.get(i).equals(want)) {
          return false;
        }
        i++;
      }
    }
    return i == actual.size();
  }

  /**
   * Subset match of proto3 JSON: every key given must be present and equal; a list must have at least
   * the given elements, each matched at its index; numbers compare by value (int64 is a JSON string),
   * other scalars by their string form.
   */
  static List<String> subsetMismatches(JsonElement want, JsonElement got, String at) {
    List<String> problems = new ArrayList<>();
    if (want.isJsonArray()) {
      if (got == null || !got.isJsonArray() || got.getAsJsonArray().size() < want.getAsJsonArray().size()) {
        problems.add(at + ": want a list of at least " + want.getAsJsonArray().size() + ", got " + got);
        return problems;
      }
      for (int i = 0; i < want.getAsJsonArray().size(); i++) {
        problems.addAll(subsetMismatches(want.getAsJsonArray().get(i), got.getAsJsonArray().get(i), at + "[" + i + "]"));
      }
    } else if (want.isJsonObject()) {
      if (got == null || !got.isJsonObject()) {
        problems.add(at + ": want an object, got " + got);
        return problems;
      }
      JsonObject obj = got.getAsJsonObject();
      for (Map.Entry<String, JsonElement> e : want.getAsJsonObject().entrySet()) {
        if (!obj.has(e.getKey())) {
          problems.add(at + "." + e.getKey() + ": missing");
        } else {
          problems.addAll(subsetMismatches(e.getValue(), obj.get(e.getKey()), at + "." + e.getKey()));
        }
      }
    } else if (!scalarEquals(want, got)) {
      problems.add(at + ": want " + want + ", got " + got);
    }
    return problems;
  }

  private static boolean scalarEquals(JsonElement want, JsonElement got) {
    if (got == null || !got.isJsonPrimitive() || !want.isJsonPrimitive()) {
      return want.equals(got);
    }
    String w = want.getAsString();
    String g = got.getAsString();
    if (w.equals(g)) {
      return true;
    }
    try {
      return new BigDecimal(w).compareTo(new BigDecimal(g)) == 0;
    } catch (NumberFormatException notNumbers) {
      return false;
    }
  }
}
