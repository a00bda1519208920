import { Module } from '@nestjs/common';

// Placeholder: replaced by the authentication feature (issue 3).
@Module({})
export class AuthModule {}
