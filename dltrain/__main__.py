from dltrain.cli import app

app(prog_name="dltrain")
