// app.js: the console's shell, Now view, live feed and steering (helper consoleui).
