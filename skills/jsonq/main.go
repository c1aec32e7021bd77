// Command jsonq is a skillbox skill that queries and reshapes JSON with a small,
// jq-like path language, so an agent can pull exact values out of a large document
// instead of reading it. See README.md for the language.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

// Input is the document and the query.
type Input struct {
	Data  json.RawMessage `json:"data"`
	Query string          `json:"query"`
}

// Output holds every value the query produced, in order (a query like .items[].name
// produces several; .count produces one).
type Output struct {
	Results []any `json:"results"`
}

func main() { sdk.Run(run) }

func run(_ context.Context, in Input) (Output, error) {
	if len(in.Data) == 0 {
		return Output{}, errors.New("data is required (use null for no data)")
	}
	q, err := Parse(in.Query)
	if err != nil {
		return Output{}, err
	}
	// json.Number keeps numbers exactly as written: no 2^53 rounding of ids.
	dec := json.NewDecoder(bytes.NewReader(in.Data))
	dec.UseNumber()
	var data any
	if err := dec.Decode(&data); err != nil {
		return Output{}, fmt.Errorf("data: %w", err)
	}
	res, err := q.eval(data)
	if err != nil {
		return Output{}, err
	}
	if res == nil {
		res = []any{}
	}
	return Output{Results: res}, nil
}
