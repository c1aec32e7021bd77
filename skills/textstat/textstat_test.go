package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func intp(n int) *int { return &n }

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want Output
	}{
		{name: "empty", in: Input{}, want: Output{TopWords: []WordCount{}}},
		{name: "one sentence", in: Input{Text: "The cat sat on the mat."}, want: Output{
			Characters: 23, Bytes: 23, Words: 6, UniqueWords: 5, Lines: 1, Sentences: 1, Paragraphs: 1,
			AvgWordLength: 2.83, AvgSentenceWords: 6, ReadingSeconds: 2,
			TopWords: []WordCount{{"the", 2}, {"cat", 1}, {"mat", 1}, {"on", 1}, {"sat", 1}},
		}},
		{name: "stopwords and top", in: Input{Text: "The cat and the dog. The cat!", Top: intp(1), SkipStopwords: true}, want: Output{
			Characters: 29, Bytes: 29, Words: 7, UniqueWords: 4, Lines: 1, Sentences: 2, Paragraphs: 1,
			AvgWordLength: 3, AvgSentenceWords: 3.5, ReadingSeconds: 2,
			TopWords: []WordCount{{"cat", 2}},
		}},
		{name: "apostrophes, hyphens, numbers, unicode", in: Input{Text: "Don’t panic: π is 3.14, well-known.\n\nZürich wasn't—built in a day", Top: intp(0)}, want: Output{
			Characters: 65, Bytes: 71, Words: 12, UniqueWords: 12, Lines: 3, Sentences: 2, Paragraphs: 2,
			AvgWordLength: 4.17, AvgSentenceWords: 6, ReadingSeconds: 4,
			TopWords: []WordCount{},
		}},
		{name: "min length and ellipsis", in: Input{Text: "Wait... what?! Go go go", MinLength: 3}, want: Output{
			Characters: 23, Bytes: 23, Words: 5, UniqueWords: 3, Lines: 1, Sentences: 3, Paragraphs: 1,
			AvgWordLength: 2.8, AvgSentenceWords: 1.67, ReadingSeconds: 2,
			TopWords: []WordCount{{"wait", 1}, {"what", 1}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Analyze(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Analyze(%q)\n got %+v\nwant %+v", tc.in.Text, got, tc.want)
			}
		})
	}
}

func TestAnalyzeRejects(t *testing.T) {
	for _, in := range []Input{{Text: "\xff"}, {Top: intp(101)}, {Top: intp(-1)}, {MinLength: -1}} {
		if _, err := Analyze(in); err == nil {
			t.Errorf("Analyze(%+v) accepted bad input", in)
		}
	}
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(`{"text":"a b a"}`), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"top_words":[{"word":"a","count":2},{"word":"b","count":1}]`) {
		t.Errorf("output = %s", out.String())
	}
	for _, bad := range []string{`{"text":1}`, `{"txt":"x"}`, `not json`} {
		if err := run(strings.NewReader(bad), &out); err == nil {
			t.Errorf("run(%s) accepted bad input", bad)
		}
	}
}
