package main

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Bounds that keep a hostile input from costing more than a small, predictable amount
// of time and memory. Money needs a tiny fraction of them.
const (
	MaxExpression = 10000 // bytes of expression
	MaxOperands   = 1000  // operands in op form
	MaxDigits     = 1000  // digits in one literal
	MaxScale      = 1000  // digits after the point in a result
	MaxDepth      = 100   // nested parentheses and unary signs
	maxBits       = 16384 // bits in any intermediate numerator or denominator (≈ 4900 digits)
)

// Rounding is how a result with more digits than the scale is cut.
type Rounding string

// The rounding modes, named as in java.math.RoundingMode and IEEE 754.
const (
	HalfEven Rounding = "half-even" // to nearest, ties to the even digit (banker's rounding); the default
	HalfUp   Rounding = "half-up"   // to nearest, ties away from zero (school rounding)
	HalfDown Rounding = "half-down" // to nearest, ties toward zero
	Up       Rounding = "up"        // away from zero
	Down     Rounding = "down"      // toward zero (truncate)
	Ceiling  Rounding = "ceiling"   // toward +infinity
	Floor    Rounding = "floor"     // toward -infinity
)

func parseRounding(s string) (Rounding, error) {
	switch r := Rounding(s); r {
	case "":
		return HalfEven, nil
	case HalfEven, HalfUp, HalfDown, Up, Down, Ceiling, Floor:
		return r, nil
	}
	return "", fmt.Errorf("rounding %q: want one of half-even, half-up, half-down, up, down, ceiling, floor", s)
}

// value is an exact rational with the largest number of fraction digits among the
// literals it came from, which is the scale a result is shown with by default
// ("5.00 + 1" is "6.00").
type value struct {
	r     *big.Rat
	scale int
}

// parseLiteral reads [+-]digits[.digits]. No exponents: "1e999999999" would be a short
// string with an enormous value.
func parseLiteral(s string) (value, error) {
	body := s
	neg := false
	if body != "" && (body[0] == '-' || body[0] == '+') {
		neg = body[0] == '-'
		body = body[1:]
	}
	intPart, frac, hasPoint := strings.Cut(body, ".")
	if intPart == "" || (hasPoint && frac == "") || !allDigits(intPart) || !allDigits(frac) {
		return value{}, fmt.Errorf("%q is not a decimal number (want digits with an optional fraction, like 19.99)", s)
	}
	if len(intPart)+len(frac) > MaxDigits {
		return value{}, fmt.Errorf("number with %d digits: at most %d", len(intPart)+len(frac), MaxDigits)
	}
	n, _ := new(big.Int).SetString(intPart+frac, 10)
	if neg {
		n.Neg(n)
	}
	d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	return value{r: new(big.Rat).SetFrac(n, d), scale: len(frac)}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ErrDivisionByZero is returned for any division whose divisor is zero.
var ErrDivisionByZero = errors.New("division by zero")

// apply computes a op b exactly.
func apply(op byte, a, b value) (value, error) {
	r := new(big.Rat)
	switch op {
	case '+':
		r.Add(a.r, b.r)
	case '-':
		r.Sub(a.r, b.r)
	case '*':
		r.Mul(a.r, b.r)
	case '/':
		if b.r.Sign() == 0 {
			return value{}, ErrDivisionByZero
		}
		r.Quo(a.r, b.r)
	default:
		return value{}, fmt.Errorf("unknown operator %q", op)
	}
	if r.Num().BitLen() > maxBits || r.Denom().BitLen() > maxBits {
		return value{}, fmt.Errorf("intermediate result too large (more than %d bits)", maxBits)
	}
	return value{r: r, scale: max(a.scale, b.scale)}, nil
}

// terminatingScale is the number of fraction digits r needs exactly, or -1 when its
// decimal expansion never ends (the reduced denominator has a prime factor other than
// 2 and 5).
func terminatingScale(r *big.Rat) int {
	d := new(big.Int).Set(r.Denom())
	twos := int(d.TrailingZeroBits())
	d.Rsh(d, uint(twos))
	fives := 0
	five, q, m := big.NewInt(5), new(big.Int), new(big.Int)
	for {
		q.QuoRem(d, five, m)
		if m.Sign() != 0 {
			break
		}
		d.Set(q)
		fives++
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return -1
	}
	return max(twos, fives)
}

// format writes r with exactly scale fraction digits, rounded by mode. exact reports
// whether no nonzero digit was dropped.
func format(r *big.Rat, scale int, mode Rounding) (s string, exact bool) {
	neg := r.Sign() < 0
	n := new(big.Int).Abs(r.Num())
	n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	d := r.Denom()
	q, rem := new(big.Int).QuoRem(n, d, new(big.Int))
	exact = rem.Sign() == 0
	if !exact {
		half := new(big.Int).Lsh(rem, 1).Cmp(d) // sign of 2·rem − d: below, at or above one half
		var inc bool
		switch mode {
		case Up:
			inc = true
		case Down:
			inc = false
		case Ceiling:
			inc = !neg
		case Floor:
			inc = neg
		case HalfUp:
			inc = half >= 0
		case HalfDown:
			inc = half > 0
		default: // HalfEven
			inc = half > 0 || (half == 0 && q.Bit(0) == 1)
		}
		if inc {
			q.Add(q, big.NewInt(1))
		}
	}
	digits := q.String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	if scale > 0 {
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg && q.Sign() != 0 {
		digits = "-" + digits
	}
	return digits, exact
}

// result turns an exact value into the output string. With no scale it shows the value
// exactly, with at least as many fraction digits as the most precise literal; a value
// that does not terminate (1/3) needs an explicit scale.
func result(v value, scale *int, mode Rounding) (string, bool, error) {
	if scale != nil {
		if *scale < 0 || *scale > MaxScale {
			return "", false, fmt.Errorf("scale %d: want 0 to %d", *scale, MaxScale)
		}
		s, exact := format(v.r, *scale, mode)
		return s, exact, nil
	}
	ts := terminatingScale(v.r)
	if ts < 0 {
		approx, _ := format(v.r, 20, HalfEven)
		return "", false, fmt.Errorf("result %s… has no finite decimal expansion: set scale (and rounding) to round it", approx)
	}
	if ts > MaxScale {
		return "", false, fmt.Errorf("result needs %d fraction digits: set a scale of at most %d", ts, MaxScale)
	}
	s, _ := format(v.r, max(ts, v.scale), mode)
	return s, true, nil
}
