// The private cluster lives with the verification run, which restarts one under load; tests use the same one.
export { PrivatePostgres, postgresBinDir, privatePostgresAvailable } from "../../verify/infra/private-postgres.ts";
