// Command decimal is a skillbox skill for exact decimal arithmetic, so that agents do
// not compute money in the model: "19.99 * 3 - 5.00 / 2" is 57.47, and 0.1 + 0.2 is 0.3.
// Values are exact rationals (math/big) until the one final rounding to the scale.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

// Input is either an expression or an op with operands.
type Input struct {
	Expression string   `json:"expression,omitempty"`
	Op         string   `json:"op,omitempty"` // add, sub, mul, div: a left fold over the operands
	Operands   []string `json:"operands,omitempty"`
	Scale      *int     `json:"scale,omitempty"`    // fraction digits of the result; required when it does not terminate
	Rounding   string   `json:"rounding,omitempty"` // default half-even
}

// Output is the result as a decimal string, and whether rounding dropped any digit.
type Output struct {
	Result string `json:"result"`
	Exact  bool   `json:"exact"`
}

func main() { sdk.Run(compute) }

func compute(_ context.Context, in Input) (Output, error) {
	mode, err := parseRounding(in.Rounding)
	if err != nil {
		return Output{}, err
	}
	var v value
	switch {
	case in.Expression != "" && (in.Op != "" || in.Operands != nil):
		return Output{}, errors.New("give either expression or op with operands, not both")
	case in.Expression != "":
		v, err = Evaluate(in.Expression)
	case in.Op != "":
		v, err = fold(in.Op, in.Operands)
	default:
		return Output{}, errors.New("give an expression, or op with operands")
	}
	if err != nil {
		return Output{}, err
	}
	s, exact, err := result(v, in.Scale, mode)
	if err != nil {
		return Output{}, err
	}
	return Output{Result: s, Exact: exact}, nil
}

// fold applies op left to right: sub of [a b c] is a-b-c.
func fold(op string, operands []string) (value, error) {
	sym := map[string]byte{"add": '+', "sub": '-', "mul": '*', "div": '/'}[op]
	if sym == 0 {
		return value{}, fmt.Errorf("op %q: want add, sub, mul or div", op)
	}
	if len(operands) == 0 || len(operands) > MaxOperands {
		return value{}, fmt.Errorf("op %s needs 1 to %d operands, got %d", op, MaxOperands, len(operands))
	}
	var acc value
	for i, s := range operands {
		v, err := parseLiteral(s)
		if err != nil {
			return value{}, fmt.Errorf("operands[%d]: %w", i, err)
		}
		if i == 0 {
			acc = v
			continue
		}
		if acc, err = apply(sym, acc, v); err != nil {
			return value{}, fmt.Errorf("operands[%d]: %w", i, err)
		}
	}
	return acc, nil
}

func zero() *big.Rat { return new(big.Rat) }
