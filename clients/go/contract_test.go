package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

type outcome struct {
	response map[string]any
	text     *string
	events   []string
	err      error
}

// TestContract replays tests/contract/scenarios.yaml, in file order, through the Client wrapper
// against a real sidecar process, and fails if any scenario did not run.
func TestContract(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	ran := map[string]bool{}
	for _, sc := range contract.Scenarios {
		id := fmt.Sprint(sc["id"])
		if ran[id] {
			t.Fatalf("scenario id %s is not unique", id)
		}
		t.Run(id, func(t *testing.T) {
			token := contract.Token
			if auth, ok := sc["auth"].(bool); ok && !auth {
				token = ""
			}
			client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(token))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			out := replay(t, client, sc)
			ran[id] = true
			for _, problem := range check(sc, out) {
				t.Error(problem)
			}
		})
	}
	for _, sc := range contract.Scenarios {
		if !ran[fmt.Sprint(sc["id"])] {
			t.Errorf("scenario %v did not run", sc["id"])
		}
	}
}

func replay(t *testing.T, client *orchestrator.Client, sc map[string]any) outcome {
	timeout := 10 * time.Second
	if ms, ok := sc["deadline_ms"].(int); ok {
		timeout = time.Duration(ms) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out outcome
	switch rpc := sc["rpc"]; rpc {
	case "Generate":
		resp, err := client.Generate(ctx, parse(t, sc, &v1.GenerateRequest{}))
		out.err = err
		if err == nil {
			text := orchestrator.Text(resp)
			out.text, out.response = &text, toMap(t, resp)
		}
	case "StreamGenerate":
		out = replayStream(t, ctx, client, sc)
	case "Switch":
		resp, err := client.Switch(ctx, parse(t, sc, &v1.SwitchRequest{}))
		out.err, out.response = err, toMap(t, resp)
	case "GetQuota":
		req := parse(t, sc, &v1.GetQuotaRequest{})
		resp, err := client.GetQuota(ctx, req.GetTenantId(), req.GetUserId())
		out.err, out.response = err, toMap(t, resp)
	case "ListModels":
		resp, err := client.ListModels(ctx, parse(t, sc, &v1.ListModelsRequest{}))
		out.err, out.response = err, toMap(t, resp)
	case "Feedback":
		req := parse(t, sc, &v1.FeedbackRequest{})
		resp, err := client.Feedback(ctx, req.GetTenantId(), req.GetRequestId(), req.GetScore(), req.GetLabel())
		out.err, out.response = err, toMap(t, resp)
	case "GetExperimentReport":
		req := parse(t, sc, &v1.GetExperimentReportRequest{})
		start, end := req.GetStartTime().AsTime(), req.GetEndTime().AsTime()
		resp, err := client.GetExperimentReport(ctx, req.GetTenantId(), req.GetExperiment(), start, end)
		out.err, out.response = err, toMap(t, resp)
	case "AcceptEscalation":
		req := parse(t, sc, &v1.AcceptEscalationRequest{})
		resp, err := client.AcceptEscalation(ctx, req.GetTenantId(), req.GetUserId(), req.GetEscalationId())
		out.err, out.response = err, toMap(t, resp)
	case "ListEscalations":
		resp, err := client.ListEscalations(ctx, parse(t, sc, &v1.ListEscalationsRequest{}))
		out.err, out.response = err, toMap(t, resp)
	case "AnswerEscalation":
		resp, err := client.AnswerEscalation(ctx, parse(t, sc, &v1.AnswerEscalationRequest{}))
		out.err, out.response = err, toMap(t, resp)
	case "DeclineEscalation":
		resp, err := client.DeclineEscalation(ctx, parse(t, sc, &v1.DeclineEscalationRequest{}))
		out.err, out.response = err, toMap(t, resp)
	case "GetAnswerReport":
		req := parse(t, sc, &v1.GetAnswerReportRequest{})
		resp, err := client.GetAnswerReport(ctx, req.GetTenantId(), req.GetAgentId())
		out.err, out.response = err, toMap(t, resp)
	case "Embed":
		resp, err := client.Embed(ctx, parse(t, sc, &v1.EmbedRequest{}))
		out.err, out.response = err, toMap(t, resp)
	default:
		t.Fatalf("unknown rpc %v", rpc)
	}
	return out
}

func replayStream(t *testing.T, ctx context.Context, client *orchestrator.Client, sc map[string]any) outcome {
	var out outcome
	stream, err := client.Stream(ctx, parse(t, sc, &v1.StreamGenerateRequest{}))
	if err != nil {
		return outcome{err: err}
	}
	cancelAfter, cancels := sc["cancel_after_deltas"].(int)
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.err = err
			return out
		}
		if event.GetResult() != nil {
			out.events = append(out.events, "final")
		} else {
			out.events = append(out.events, "delta")
			if cancels && stream.Deltas() >= cancelAfter {
				stream.Cancel()
			}
		}
	}
	text := stream.Text()
	out.text, out.response = &text, toMap(t, stream.Result())
	return out
}

func parse[M proto.Message](t *testing.T, sc map[string]any, msg M) M {
	t.Helper()
	raw, err := json.Marshal(sc["request"])
	if err != nil {
		t.Fatal(err)
	}
	if sc["request"] == nil {
		raw = []byte("{}")
	}
	if err := protojson.Unmarshal(raw, msg); err != nil {
		t.Fatalf("request of %v: %v", sc["id"], err)
	}
	return msg
}

func toMap(t *testing.T, msg proto.Message) map[string]any {
	if msg == nil || reflect.ValueOf(msg).IsNil() {
		return nil
	}
	raw, err := protojson.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func check(sc map[string]any, out outcome) []string {
	exp, _ := sc["expect"].(map[string]any)
	if ok, _ := exp["ok"].(bool); ok {
		if out.err != nil {
			return []string{fmt.Sprintf("expected success, got %v", out.err)}
		}
		var problems []string
		if text, given := exp["text"].(string); given && (out.text == nil || *out.text != text) {
			problems = append(problems, fmt.Sprintf("text %q != %q", deref(out.text), text))
		}
		if events, given := exp["events"].([]any); given && !eventsMatch(events, out.events) {
			problems = append(problems, fmt.Sprintf("events %v do not match %v", out.events, events))
		}
		if response, given := exp["response"]; given {
			problems = append(problems, subset(response, any(out.response), "response")...)
		}
		return problems
	}
	if out.err == nil {
		return []string{fmt.Sprintf("expected %v, got success %v", exp["code"], out.response)}
	}
	return checkError(exp, out.err)
}

var codeNames = map[string]string{"Canceled": "CANCELLED"}

func checkError(exp map[string]any, err error) []string {
	var se *orchestrator.StatusError
	if !errors.As(err, &se) {
		return []string{fmt.Sprintf("not a typed error: %T %v", err, err)}
	}
	var problems []string
	if name := codeName(se); name != exp["code"] {
		problems = append(problems, fmt.Sprintf("code %s != %v (%v)", name, exp["code"], err))
	}
	if reason, given := exp["reason"].(string); given && se.Reason != reason {
		problems = append(problems, fmt.Sprintf("reason %q != %q", se.Reason, reason))
	}
	for _, key := range list(exp["metadata_keys"]) {
		if _, ok := se.Metadata[fmt.Sprint(key)]; !ok {
			problems = append(problems, fmt.Sprintf("metadata key %s missing from %v", key, se.Metadata))
		}
	}
	fields := map[string]bool{}
	for _, v := range se.FieldViolations {
		fields[v.Field] = true
	}
	for _, f := range list(exp["field_violations"]) {
		if !fields[fmt.Sprint(f)] {
			problems = append(problems, fmt.Sprintf("field violation %v missing from %v", f, se.FieldViolations))
		}
	}
	if want, given := exp["retry_info"].(bool); given && se.HasRetryDelay != want {
		problems = append(problems, fmt.Sprintf("retry_info expected %v", want))
	}
	if want, _ := exp["quota_failure"].(bool); want && len(se.QuotaViolations) == 0 {
		problems = append(problems, "no QuotaFailure")
	}
	var quota *orchestrator.QuotaExceededError
	if want, _ := exp["quota_failure"].(bool); want && !errors.As(err, &quota) {
		problems = append(problems, fmt.Sprintf("the caller's quota is not a *QuotaExceededError: %T", err))
	}
	if n, given := exp["deltas_before_error"].(int); given && se.DeltasReceived < n {
		problems = append(problems, fmt.Sprintf("%d deltas before the error, expected >= %d", se.DeltasReceived, n))
	}
	var interrupted *orchestrator.StreamInterruptedError
	if want, _ := exp["partial_usage"].(bool); want {
		if _, ok := partialUsage(err, &interrupted); !ok {
			problems = append(problems, fmt.Sprintf("no partial usage on %v", err))
		}
	}
	var cancelled *orchestrator.CancelledError
	if want, _ := exp["cancelled"].(bool); want && !errors.As(err, &cancelled) {
		problems = append(problems, fmt.Sprintf("expected a local cancellation, got %v", err))
	}
	return problems
}

func partialUsage(err error, target **orchestrator.StreamInterruptedError) (orchestrator.PartialUsage, bool) {
	if !errors.As(err, target) {
		return orchestrator.PartialUsage{}, false
	}
	return (*target).PartialUsage()
}

func codeName(se *orchestrator.StatusError) string {
	name := se.Code.String()
	if mapped, ok := codeNames[name]; ok {
		return mapped
	}
	// codes.Code.String() is CamelCase (InvalidArgument); the scenario file uses INVALID_ARGUMENT
	return strings.ToUpper(regexp.MustCompile(`([a-z])([A-Z])`).ReplaceAllString(name, "${1}_${2}"))
}

func eventsMatch(pattern []any, events []string) bool {
	var re strings.Builder
	for _, p := range pattern {
		re.WriteString(map[string]string{"delta": "d", "delta+": "d+", "final": "f"}[fmt.Sprint(p)])
	}
	var got strings.Builder
	for _, e := range events {
		got.WriteString(e[:1])
	}
	return regexp.MustCompile("^" + re.String() + "$").MatchString(got.String())
}

// subset reports where actual does not contain expected: object keys, list elements by index,
// equal scalars (numbers compared as numbers).
func subset(expected, actual any, path string) []string {
	switch exp := expected.(type) {
	case map[string]any:
		act, ok := actual.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: expected an object, got %v", path, actual)}
		}
		var problems []string
		for k, v := range exp {
			if a, present := act[k]; present {
				problems = append(problems, subset(v, a, path+"."+k)...)
			} else {
				problems = append(problems, path+"."+k+": missing")
			}
		}
		return problems
	case []any:
		act, ok := actual.([]any)
		if !ok || len(act) < len(exp) {
			return []string{fmt.Sprintf("%s: expected at least %d elements, got %v", path, len(exp), actual)}
		}
		var problems []string
		for i, v := range exp {
			problems = append(problems, subset(v, act[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return problems
	}
	if number(expected) != nil && number(actual) != nil && *number(expected) == *number(actual) || expected == actual {
		return nil
	}
	return []string{fmt.Sprintf("%s: expected %v, got %v", path, expected, actual)}
}

func number(v any) *float64 {
	var f float64
	switch n := v.(type) {
	case int:
		f = float64(n)
	case float64:
		f = n
	default:
		return nil
	}
	return &f
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}
