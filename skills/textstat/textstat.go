package main

import (
	"errors"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input is the text to measure and how to rank its words.
type Input struct {
	Text          string `json:"text"`
	Top           *int   `json:"top,omitempty"`            // how many frequent words to list (default 10, at most 100)
	MinLength     int    `json:"min_length,omitempty"`     // ignore shorter words in the ranking
	SkipStopwords bool   `json:"skip_stopwords,omitempty"` // leave common English words out of the ranking
}

// WordCount is one word and how often it occurs.
type WordCount struct {
	Word  string `json:"word"`
	Count int    `json:"count"`
}

// Output is the text's statistics.
type Output struct {
	Characters       int         `json:"characters"` // Unicode code points
	Bytes            int         `json:"bytes"`
	Words            int         `json:"words"`
	UniqueWords      int         `json:"unique_words"`
	Lines            int         `json:"lines"`
	Sentences        int         `json:"sentences"`
	Paragraphs       int         `json:"paragraphs"`
	AvgWordLength    float64     `json:"avg_word_length"`    // letters per word, 2 decimals
	AvgSentenceWords float64     `json:"avg_sentence_words"` // words per sentence, 2 decimals
	ReadingSeconds   int         `json:"reading_seconds"`    // at 230 words a minute
	TopWords         []WordCount `json:"top_words"`
}

const (
	defaultTop  = 10
	maxTop      = 100
	wordsPerMin = 230
)

// Analyze computes the statistics of in.Text.
func Analyze(in Input) (Output, error) {
	if !utf8.ValidString(in.Text) {
		return Output{}, errors.New("text is not valid UTF-8")
	}
	top := defaultTop
	if in.Top != nil {
		top = *in.Top
	}
	if top < 0 || top > maxTop {
		return Output{}, errors.New("top must be between 0 and 100")
	}
	if in.MinLength < 0 {
		return Output{}, errors.New("min_length must not be negative")
	}
	out := Output{
		Characters: utf8.RuneCountInString(in.Text),
		Bytes:      len(in.Text),
		Lines:      countLines(in.Text),
		Sentences:  countSentences(in.Text),
		Paragraphs: countParagraphs(in.Text),
		TopWords:   []WordCount{},
	}
	words := splitWords(in.Text)
	counts := map[string]int{}
	letters := 0
	for _, w := range words {
		counts[w]++
		letters += utf8.RuneCountInString(w)
	}
	out.Words, out.UniqueWords = len(words), len(counts)
	if out.Words > 0 {
		out.AvgWordLength = round2(float64(letters) / float64(out.Words))
		out.ReadingSeconds = int(math.Ceil(float64(out.Words) * 60 / wordsPerMin))
	}
	if out.Sentences > 0 {
		out.AvgSentenceWords = round2(float64(out.Words) / float64(out.Sentences))
	}
	for w, n := range counts {
		if utf8.RuneCountInString(w) < in.MinLength || in.SkipStopwords && stopwords[w] {
			continue
		}
		out.TopWords = append(out.TopWords, WordCount{w, n})
	}
	sort.Slice(out.TopWords, func(i, j int) bool {
		a, b := out.TopWords[i], out.TopWords[j]
		return a.Count > b.Count || a.Count == b.Count && a.Word < b.Word
	})
	if len(out.TopWords) > top {
		out.TopWords = out.TopWords[:top]
	}
	return out, nil
}

// splitWords returns the lower-cased words: runs of letters and digits, keeping an
// apostrophe or hyphen between two such runs ("don't", "well-known") and a point or
// comma between digits ("3.14").
func splitWords(s string) []string {
	var words []string
	var cur []rune
	rs := []rune(s)
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) && len(cur) > 0:
			cur = append(cur, unicode.ToLower(r))
		case (r == '\'' || r == '’' || r == '-') && len(cur) > 0 && i+1 < len(rs) &&
			(unicode.IsLetter(rs[i+1]) || unicode.IsDigit(rs[i+1])):
			if r == '’' {
				r = '\''
			}
			cur = append(cur, r)
		case (r == '.' || r == ',') && len(cur) > 0 && unicode.IsDigit(cur[len(cur)-1]) && i+1 < len(rs) && unicode.IsDigit(rs[i+1]):
			cur = append(cur, r) // 3.14, 1,000
		default:
			flush()
		}
	}
	flush()
	return words
}

func countLines(s string) int {
	if s == "" {
		return 0
	}
	n := strings.Count(s, "\n")
	if !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// countSentences counts runs of . ! ? (or … ) that end a sentence, plus trailing
// words with no terminator.
func countSentences(s string) int {
	n := 0
	pending := false // words seen since the last terminator
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '.' || r == '!' || r == '?' || r == '…':
			// A dot between digits ("3.14") does not end a sentence.
			if r == '.' && i > 0 && i+1 < len(rs) && unicode.IsDigit(rs[i-1]) && unicode.IsDigit(rs[i+1]) {
				continue
			}
			for i+1 < len(rs) && strings.ContainsRune(".!?…", rs[i+1]) {
				i++
			}
			if pending {
				n++
				pending = false
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			pending = true
		}
	}
	if pending {
		n++
	}
	return n
}

func countParagraphs(s string) int {
	n := 0
	inPara := false
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			inPara = false
			continue
		}
		if !inPara {
			n++
			inPara = true
		}
	}
	return n
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about after all also an and any are as at be because been but by can
		could did do does for from had has have he her his how i if in into is it its just like me more most
		my no not of on one only or other our out over she so some such than that the their them then there
		these they this to too up us very was we were what when which who will with would you your`) {
		m[w] = true
	}
	return m
}()
