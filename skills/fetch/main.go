// Command fetch is a skillbox skill that fetches a web page over HTTP(S), through the
// host, and returns its title and readable text: script, style and navigation dropped,
// whitespace collapsed. Plain text and JSON pass through as they are.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/skillbox-dev/skillbox/skills/sdk"
)

// DefaultMaxChars is how much text is returned when the input does not say.
const DefaultMaxChars = 20000

// Input is the page to fetch.
type Input struct {
	URL      string `json:"url"`
	MaxChars int    `json:"max_chars,omitempty"` // characters of text to return; default 20000
}

// Output is what the page said.
type Output struct {
	URL         string `json:"url"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Text        string `json:"text"`
	Truncated   bool   `json:"truncated"` // text was cut at max_chars
}

func main() {
	sdk.Run(func(ctx context.Context, in Input) (Output, error) {
		return Fetch(ctx, sdk.HTTPClient(), in)
	})
}

// Fetch gets in.URL with client and extracts its text. Error statuses are not errors:
// the caller sees the status and whatever text the error page had. An origin the host
// refuses is an error that says so.
func Fetch(ctx context.Context, client *http.Client, in Input) (Output, error) {
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Output{}, fmt.Errorf("url %q: want an absolute http or https URL", in.URL)
	}
	limit := in.MaxChars
	if limit <= 0 {
		limit = DefaultMaxChars
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Output{}, fmt.Errorf("url %q: %w", in.URL, err)
	}
	req.Header.Set("Accept", "text/html, application/xhtml+xml, text/plain;q=0.9, application/json;q=0.8, */*;q=0.5")
	req.Header.Set("User-Agent", "skillbox-fetch/0.1")
	resp, err := client.Do(req)
	if err != nil {
		var eg *sdk.EgressError
		if errors.As(err, &eg) {
			switch eg.Reason {
			case sdk.ReasonEgressDenied:
				return Output{}, fmt.Errorf("fetch %s: not allowed: %s", u.Redacted(), eg.Message)
			case sdk.ReasonRequestLimit:
				return Output{}, fmt.Errorf("fetch %s: request budget spent: %s", u.Redacted(), eg.Message)
			}
			return Output{}, fmt.Errorf("fetch %s: %s: %s", u.Redacted(), strings.ToLower(eg.Reason), eg.Message)
		}
		return Output{}, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Output{}, fmt.Errorf("fetch %s: read body: %w", u.Redacted(), err)
	}
	out := Output{URL: u.String(), Status: resp.StatusCode}
	out.ContentType, out.Title, out.Text, err = Extract(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return Output{}, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	out.Text, out.Truncated = truncate(out.Text, limit)
	return out, nil
}

// Extract turns a body into text by its media type: HTML to readable text, text and
// JSON as they are, anything else is refused. With no Content-Type, the body is sniffed.
func Extract(contentType string, body []byte) (mediaType, title, text string, err error) {
	if contentType == "" {
		contentType = http.DetectContentType(body)
	}
	mediaType, _, err = mime.ParseMediaType(contentType)
	if err != nil {
		return "", "", "", fmt.Errorf("content type %q: %w", contentType, err)
	}
	// Pages are assumed UTF-8 (as nearly all are); invalid bytes become U+FFFD rather
	// than invalid JSON.
	body = []byte(strings.ToValidUTF8(string(body), "\uFFFD"))
	switch {
	case mediaType == "text/html" || mediaType == "application/xhtml+xml":
		title, text = ExtractHTML(body)
		return mediaType, title, text, nil
	case strings.HasPrefix(mediaType, "text/"), mediaType == "application/json",
		strings.HasSuffix(mediaType, "+json"), mediaType == "application/xml", strings.HasSuffix(mediaType, "+xml"):
		return mediaType, "", string(body), nil
	}
	return "", "", "", fmt.Errorf("content type %s is not text", mediaType)
}

// truncate cuts s to at most n characters (runes).
func truncate(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j], true
		}
		i++
	}
	return s, false
}
