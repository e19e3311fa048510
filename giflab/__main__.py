from giflab.cli import main

raise SystemExit(main())
