use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::config::{Process, Settings};
use switchboard::{cli, run, telemetry};

/// Self-service network connectivity. Server verbs take their configuration from
/// the environment (see the README); with none, `up` runs everything on this
/// machine. Client verbs (`pool`, `network`, `connection`) call a portal's API with a token.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(flatten)]
    client: cli::ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Server(ServerCommand),
    #[command(flatten)]
    Client(cli::Command),
    /// Print the /api/v1 OpenAPI document (needs no server or database)
    Openapi,
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Web, workers and monitor in one process; starts a private PostgreSQL when DATABASE_URL is unset
    Up,
    /// The web server only
    Serve,
    /// The job workers only
    Work,
    /// Apply database migrations (the portal's and the job queue's), then exit
    Migrate,
    /// Operator tasks
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an API token (and the user, if no user has this email); prints it once
    CreateToken {
        /// The user's email address
        #[arg(long)]
        email: String,
        /// A name for the token, e.g. "bootstrap" or "ci"
        #[arg(long)]
        name: String,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
        /// Days until the token expires (default: never)
        #[arg(long, value_name = "DAYS")]
        expires_in: Option<i64>,
    },
}

fn main() -> ExitCode {
    let args = Cli::parse();
    match args.command {
        Command::Server(command) => server(command),
        // A client needs no server configuration: only the portal's URL and a token.
        Command::Client(command) => cli::run(args.client, command),
        Command::Openapi => {
            use std::io::Write;
            let document = format!("{}\n", switchboard::api::v1::document());
            match std::io::stdout().lock().write_all(document.as_bytes()) {
                // `switchboard openapi | head` is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("switchboard: could not write the document: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
    }
}

fn server(command: ServerCommand) -> ExitCode {
    let process = match command {
        ServerCommand::Up => Process::Up,
        ServerCommand::Serve => Process::Serve,
        ServerCommand::Work => Process::Work,
        ServerCommand::Migrate | ServerCommand::Admin(_) => Process::Other,
    };
    let settings = match Settings::from_env().and_then(|s| s.for_process(process)) {
        Ok(settings) => settings,
        Err(e) => {
            eprint!("switchboard: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(&settings.log, settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            ServerCommand::Up => run::up(settings).await,
            ServerCommand::Serve => run::serve(settings).await,
            ServerCommand::Work => run::work(settings).await,
            ServerCommand::Migrate => run::migrate(settings).await,
            ServerCommand::Admin(AdminCommand::CreateToken {
                email,
                name,
                admin,
                expires_in,
            }) => run::create_token(settings, email, name, admin, expires_in)
                .await
                .map(|token| println!("{token}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "switchboard stopped");
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}
