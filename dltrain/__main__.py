from dltrain.cli.app import app

app(prog_name="dltrain")
