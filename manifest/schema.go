package manifest

// schemas holds the compiled input and output JSON Schemas. Placeholder until the
// schema compiler lands.
type schemas struct{}
