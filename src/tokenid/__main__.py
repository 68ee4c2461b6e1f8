from tokenid.cli import main

main()
