#!/usr/bin/env node
// Stable bin entry (exists before the first build, so package managers can link it).
import '../dist/cli/main.js';
