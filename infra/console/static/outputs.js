// outputs.js: renders Jupyter outputs (helper consoleout).
