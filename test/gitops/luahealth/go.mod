module tokenize-wiki/test/gitops/luahealth

go 1.23

// The Lua VM Argo CD embeds (the version its go.mod requires at the pinned Argo CD release).
require github.com/yuin/gopher-lua v1.1.2
