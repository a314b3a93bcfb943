package proxy

import "github.com/zerohop/zerohop/proxy/internal/apikey"

// APIKeyLine is the key file line for consumer's key with salt.
func APIKeyLine(consumer, salt, key string) string { return apikey.Line(consumer, salt, key) }
