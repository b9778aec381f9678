// then.js: the timeline and the past at a seq (helper consolethen).
